"""An Airflow 2-style file that still runs on Airflow 3: ``from airflow import DAG``,
``airflow.operators.*``, ``airflow.decorators``, ``airflow.models.Variable`` (with
``default_var``), ``airflow.models.baseoperator.chain``, ``airflow.utils.task_group``
and ``airflow.sensors.python``; dependencies set with ``dag=`` instead of a ``with``
block."""

from datetime import datetime, timedelta

from airflow import DAG
from airflow.decorators import task
from airflow.exceptions import AirflowSkipException
from airflow.models import Variable
from airflow.models.baseoperator import chain
from airflow.operators.bash import BashOperator
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import BranchPythonOperator, PythonOperator
from airflow.sensors.python import PythonSensor
from airflow.utils.task_group import TaskGroup
from airflow.utils.trigger_rule import TriggerRule

default_args = {
    "owner": "analytics",
    "retries": 1,
    "retry_delay": timedelta(seconds=0),
}

dag = DAG(
    dag_id="legacy_imports",
    default_args=default_args,
    description="Airflow 2 idioms",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example", "legacy"],
)


def read_setting():
    value = Variable.get("legacy_setting", default_var="default-setting")
    print(f"setting is {value}")
    return value


def decide(**kwargs):
    return "process.work" if kwargs["ti"].xcom_pull(task_ids="read_setting") else "nothing"


def skip_this():
    raise AirflowSkipException("skipped in the legacy way")


begin = EmptyOperator(task_id="begin", dag=dag)
setting = PythonOperator(task_id="read_setting", python_callable=read_setting, dag=dag)
ready = PythonSensor(
    task_id="ready", python_callable=lambda: True, poke_interval=0.2, timeout=10, dag=dag
)
branch = BranchPythonOperator(task_id="branch", python_callable=decide, dag=dag)
nothing = EmptyOperator(task_id="nothing", dag=dag)

with TaskGroup("process", dag=dag) as process:
    work = BashOperator(task_id="work", bash_command="echo working in the group", dag=dag)
    maybe = PythonOperator(task_id="maybe", python_callable=skip_this, dag=dag)
    work >> maybe

finish = EmptyOperator(
    task_id="finish", trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS, dag=dag
)

with dag:

    @task
    def summary(value):
        return f"summary: {value}"

    chain(begin, setting, ready, branch, [work, nothing], finish)
    summary(setting.output) >> finish
