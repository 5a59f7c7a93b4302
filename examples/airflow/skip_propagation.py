"""Skip propagation: ``AirflowSkipException`` skips a task; the skip travels down a chain
of ``all_success`` tasks and into a mapped task (skipped before it expands), stops at a
``none_failed`` task, and an ``all_success`` task after that runs again."""

from datetime import datetime

from airflow.exceptions import AirflowSkipException
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, task
from airflow.utils.trigger_rule import TriggerRule

with DAG(
    dag_id="skip_propagation",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example"],
):

    @task
    def numbers() -> list[int]:
        return [1, 2, 3]

    @task
    def skipper():
        print("checking for new data")
        raise AirflowSkipException("nothing to do today")

    @task
    def square(x: int) -> int:
        return x * x

    skipped = skipper()
    child_1 = EmptyOperator(task_id="child_1")
    child_2 = EmptyOperator(task_id="child_2")
    child_3 = EmptyOperator(task_id="child_3")
    rescue = EmptyOperator(task_id="rescue", trigger_rule=TriggerRule.NONE_FAILED)
    final = EmptyOperator(task_id="final")
    no_skips = EmptyOperator(task_id="no_skips", trigger_rule=TriggerRule.NONE_SKIPPED)

    skipped >> child_1 >> child_2 >> child_3 >> rescue >> final
    child_1 >> no_skips

    squares = square.expand(x=numbers())
    skipped >> squares
