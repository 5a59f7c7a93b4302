"""``depends_on_past`` and ``wait_for_downstream``: in a run, ``extract`` waits for
``extract`` of the previous run (by logical date) to succeed and, because of
``wait_for_downstream``, for that run's ``transform`` too; ``load`` waits for the
previous ``load``. The first run has no previous run and just runs."""

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

with DAG(
    dag_id="depends_on_past",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    default_args={"depends_on_past": True},
    tags=["example", "scheduling"],
):
    extract = BashOperator(
        task_id="extract",
        bash_command="echo extract {{ ds }}; sleep 1",
        wait_for_downstream=True,
    )
    transform = BashOperator(task_id="transform", bash_command="echo transform {{ ds }}")
    load = BashOperator(task_id="load", bash_command="echo load {{ ds }}")
    extract >> transform >> load
