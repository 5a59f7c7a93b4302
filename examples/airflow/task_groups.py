"""Task groups: a ``TaskGroup`` context manager with a nested group (ids are prefixed
with the group ids), a group with ``prefix_group_id=False``, dependencies on whole
groups, and a ``@task_group`` function taking and returning XComs, called twice (the
second call's group is ``transform__1``)."""

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, TaskGroup, task, task_group

with DAG(
    dag_id="task_groups",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example", "groups"],
):
    start = EmptyOperator(task_id="start")

    with TaskGroup("extract", tooltip="Extract from every source") as extract:
        from_api = BashOperator(task_id="from_api", bash_command="echo api")
        from_db = BashOperator(task_id="from_db", bash_command="echo db")
        with TaskGroup("nested") as nested:
            EmptyOperator(task_id="inner")
        [from_api, from_db] >> nested

    with TaskGroup("flat", prefix_group_id=False) as flat:
        EmptyOperator(task_id="flat_task")

    @task_group(group_id="transform")
    def transform(raw: str):
        @task
        def clean(value: str) -> str:
            return value.strip().upper()

        @task
        def tag(value: str) -> str:
            return f"[{value}]"

        return tag(clean(raw))

    @task
    def source() -> str:
        return "  payload  "

    @task
    def other_source() -> str:
        return " other "

    @task
    def publish(first: str, second: str) -> str:
        print(f"publishing {first} and {second}")
        return f"{first}+{second}"

    start >> extract >> flat
    first = transform(source())
    second = transform(other_source())
    published = publish(first, second)
    flat >> published
