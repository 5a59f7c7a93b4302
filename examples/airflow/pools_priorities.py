"""Where and in which order tasks run: ``priority_weight`` with each ``weight_rule``,
``pool`` and ``pool_slots``, ``queue`` (the ``etl`` queue needs an executor that
consumes it) and ``max_active_tis_per_dag``."""

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, task

with DAG(
    dag_id="pools_priorities",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_tasks=4,
    tags=["example", "scheduling"],
):
    urgent = BashOperator(
        task_id="urgent",
        bash_command="echo urgent",
        priority_weight=10,
        weight_rule="absolute",
        pool="default_pool",
        pool_slots=1,
    )
    on_etl_queue = BashOperator(
        task_id="on_etl_queue",
        bash_command="echo ran on the etl queue",
        queue="etl",
        priority_weight=3,
        weight_rule="absolute",
    )

    @task(priority_weight=5, weight_rule="upstream", max_active_tis_per_dag=1)
    def one_at_a_time(n: int) -> int:
        return n * 10

    mapped = one_at_a_time.expand(n=[1, 2, 3])
    [urgent, on_etl_queue] >> mapped
