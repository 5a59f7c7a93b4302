"""Classic operators in a ``with DAG(...)`` block: PythonOperator with ``op_args`` and
``op_kwargs``, BashOperator with ``cwd``, ``env`` and ``append_env``, EmptyOperator, and
dependencies written with ``>>``, ``<<`` and lists."""

from datetime import datetime

from airflow.models.dag import DAG
from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.python import PythonOperator


def greet(name, punctuation="."):
    message = f"Hello, {name}{punctuation}"
    print(message)
    return message


with DAG(
    dag_id="classic_operators",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    default_args={"owner": "data-eng"},
    tags=["example"],
) as dag:
    start = EmptyOperator(task_id="start")
    say_hello = PythonOperator(
        task_id="say_hello",
        python_callable=greet,
        op_args=["Ada"],
        op_kwargs={"punctuation": "!"},
    )
    where = BashOperator(task_id="where", bash_command="pwd", cwd="/tmp")
    # env replaces the whole environment (HOME is gone) ...
    env_only = BashOperator(
        task_id="env_only",
        bash_command='echo "color=$COLOR home=${HOME:-unset}"',
        env={"COLOR": "blue"},
    )
    # ... unless append_env adds it to the worker's environment.
    env_appended = BashOperator(
        task_id="env_appended",
        bash_command='echo "color=$COLOR path=${PATH:+set}"',
        env={"COLOR": "red"},
        append_env=True,
    )
    end = EmptyOperator(task_id="end")

    start >> say_hello
    where << start
    start >> [env_only, env_appended]
    [say_hello, where, env_only, env_appended] >> end
