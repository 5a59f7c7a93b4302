"""BashOperator and ``@task.bash``: the last line of output is the XCom, exit code 99
skips the task (and ``skip_on_exit_code`` picks others), any other non-zero code fails
it, and a skip propagates to ``all_success`` downstreams.

The run succeeds although ``fails`` failed: Airflow decides a run's state from its
leaves, and ``fails`` is followed by ``cleanup`` (``all_done``), which succeeds."""

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, task

with DAG(
    dag_id="bash_features",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example", "bash"],
):

    @task.bash
    def make_greeting(name: str) -> str:
        return f'echo "building greeting"; echo "hi {name}"'

    make_greeting("Bob")

    skip_me = BashOperator(task_id="skip_me", bash_command="echo skipping on purpose; exit 99")
    after_skip = PythonOperator(task_id="after_skip", python_callable=lambda: print("never"))
    custom_skip_code = BashOperator(
        task_id="custom_skip_code", bash_command="exit 3", skip_on_exit_code=3
    )
    fails = BashOperator(task_id="fails", bash_command="echo about to fail >&2; exit 2")
    cleanup = BashOperator(
        task_id="cleanup", bash_command="echo cleanup done", trigger_rule="all_done"
    )

    skip_me >> after_skip >> cleanup
    fails >> cleanup
