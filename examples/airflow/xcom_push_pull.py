"""XCom by hand: ``ti.xcom_push`` with keys, ``ti.xcom_pull`` by task id, by key, of
several task ids at once and with a default; ``do_xcom_push=False``; and a return value
over the XCom size limit, which fails its task (``note_failure`` then runs, so the run
still succeeds)."""

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, task
from airflow.utils.trigger_rule import TriggerRule


def pull_everything(ti):
    rows = ti.xcom_pull(task_ids="push", key="rows")
    meta = ti.xcom_pull(task_ids="push", key="meta")
    returned = ti.xcom_pull(task_ids="push")
    both = ti.xcom_pull(task_ids=["push", "bash_push"])
    hidden = ti.xcom_pull(task_ids="no_push")
    missing = ti.xcom_pull(task_ids="push", key="nope", default="n/a")
    print(f"rows={rows} meta={meta} returned={returned} both={both}")
    return {
        "rows": rows,
        "source": meta["source"],
        "returned": returned,
        "both": both,
        "hidden": hidden,
        "missing": missing,
    }


with DAG(
    dag_id="xcom_push_pull",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example", "xcom"],
):

    @task
    def push(ti=None):
        ti.xcom_push(key="rows", value=[1, 2, 3])
        ti.xcom_push(key="meta", value={"source": "api"})
        return "pushed"

    bash_push = BashOperator(task_id="bash_push", bash_command='echo "bash value"')
    no_push = BashOperator(task_id="no_push", bash_command="echo hidden", do_xcom_push=False)
    pull = PythonOperator(task_id="pull", python_callable=pull_everything)
    [push(), bash_push, no_push] >> pull

    @task
    def too_big():
        return "x" * 300_000

    note_failure = BashOperator(
        task_id="note_failure",
        bash_command="echo too_big failed as expected",
        trigger_rule=TriggerRule.ONE_FAILED,
    )
    too_big() >> note_failure
