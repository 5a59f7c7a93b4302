"""Cross-DAG dependencies: ``ext_consumer`` waits (reschedule mode) for task ``produce``
of ``ext_producer`` in the run with the same logical date, and gives up softly on a DAG
that never runs. Trigger both DAGs with the same logical date."""

from datetime import datetime

from airflow.providers.standard.sensors.external_task import ExternalTaskSensor
from airflow.sdk import DAG, task

with DAG(
    dag_id="ext_producer",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example", "sensors"],
):

    @task
    def produce():
        print("produced the daily extract")
        return "extract-ready"

    produce()


with DAG(
    dag_id="ext_consumer",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example", "sensors"],
):
    wait_for_producer = ExternalTaskSensor(
        task_id="wait_for_producer",
        external_dag_id="ext_producer",
        external_task_id="produce",
        mode="reschedule",
        poke_interval=0.5,
        timeout=45,
    )
    wait_for_ghost = ExternalTaskSensor(
        task_id="wait_for_ghost",
        external_dag_id="ext_ghost_dag",
        external_task_id="nothing",
        mode="poke",
        poke_interval=0.3,
        timeout=1.5,
        soft_fail=True,
    )

    @task
    def consume():
        print("consuming the daily extract")
        return "consumed"

    wait_for_producer >> consume()
