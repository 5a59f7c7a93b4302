"""Retries: ``retries`` and ``retry_delay`` from ``default_args``, exponential backoff
capped by ``max_retry_delay``, ``AirflowFailException`` (never retried), a task that
runs out of retries, and a final ``all_done`` task so that the run succeeds."""

from datetime import datetime, timedelta

from airflow.exceptions import AirflowFailException
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, get_current_context, task
from airflow.utils.trigger_rule import TriggerRule

with DAG(
    dag_id="retries",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=0.5)},
    tags=["example", "retries"],
):

    @task
    def flaky():
        ti = get_current_context()["ti"]
        print(f"attempt {ti.try_number}")
        if ti.try_number < 3:
            raise RuntimeError(f"transient error on try {ti.try_number}")
        return f"ok on try {ti.try_number}"

    @task(
        retries=3,
        retry_delay=timedelta(seconds=0.2),
        retry_exponential_backoff=True,
        max_retry_delay=timedelta(seconds=1),
    )
    def backoff(ti=None):
        print(f"backoff attempt {ti.try_number}")
        if ti.try_number < 3:
            raise ConnectionError("service unavailable")
        return ti.try_number

    @task(retries=3)
    def fatal():
        raise AirflowFailException("bad input, retrying will not help")

    @task(retries=1, retry_delay=timedelta(seconds=0))
    def always_fails(ti=None):
        print(f"always_fails attempt {ti.try_number}")
        raise ValueError("still broken")

    final = EmptyOperator(task_id="final", trigger_rule=TriggerRule.ALL_DONE)
    [flaky(), backoff(), fatal(), always_fails()] >> final
