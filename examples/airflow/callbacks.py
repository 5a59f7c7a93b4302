"""Task callbacks: ``on_execute_callback``, ``on_success_callback`` (also as a list),
``on_failure_callback`` and ``on_retry_callback``, set in ``default_args`` and per
task. They run in the task's process, so what they print is in the task's log."""

from datetime import datetime, timedelta

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG
from airflow.utils.trigger_rule import TriggerRule


def on_execute(context):
    ti = context["ti"]
    print(f"on_execute: {ti.task_id} try {ti.try_number}")


def on_success(context):
    print(f"on_success: {context['ti'].task_id}")


def also_on_success(context):
    print(f"also_on_success: {context['task'].task_id}")


def on_failure(context):
    print(f"on_failure: {context['ti'].task_id}: {context['exception']}")


def on_retry(context):
    print(f"on_retry: {context['ti'].task_id}: {context['exception']}")


def fine():
    print("working fine")
    return "fine"


def fail_first(ti):
    if ti.try_number == 1:
        raise RuntimeError("first try fails")
    return "second try works"


def boom():
    raise ValueError("boom")


with DAG(
    dag_id="callbacks",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    default_args={
        "on_execute_callback": on_execute,
        "on_success_callback": on_success,
        "on_failure_callback": on_failure,
        "on_retry_callback": on_retry,
    },
    tags=["example", "callbacks"],
):
    good = PythonOperator(
        task_id="good",
        python_callable=fine,
        on_success_callback=[on_success, also_on_success],
    )
    flaky_once = PythonOperator(
        task_id="flaky_once",
        python_callable=fail_first,
        retries=1,
        retry_delay=timedelta(seconds=0),
    )
    bad = PythonOperator(task_id="bad", python_callable=boom)
    wrap_up = EmptyOperator(task_id="wrap_up", trigger_rule=TriggerRule.ALL_DONE)
    [good, flaky_once, bad] >> wrap_up
