"""Setup and teardown with classic operators and ``as_teardown(setups=...)``.

In ``teardown_failure_ignored`` the teardown fails but the run succeeds: a teardown's
failure does not count for the run's state. ``teardown_failure_fails_run`` is the same
DAG with ``on_failure_fail_dagrun=True``: there it does. ``setup_failure`` shows a failed
setup: the work is ``upstream_failed`` and so is the teardown."""

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

for dag_id, fail_dagrun in (
    ("teardown_failure_ignored", False),
    ("teardown_failure_fails_run", True),
):
    with DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=datetime(2024, 1, 1),
        catchup=False,
        tags=["example", "setup-teardown"],
    ):
        create_bucket = BashOperator(task_id="create_bucket", bash_command="echo bucket created")
        load = BashOperator(task_id="load", bash_command="echo loading rows")
        drop_bucket = BashOperator(
            task_id="drop_bucket", bash_command="echo could not drop; exit 1"
        ).as_teardown(setups=create_bucket, on_failure_fail_dagrun=fail_dagrun)
        create_bucket >> load >> drop_bucket


with DAG(
    dag_id="setup_failure",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example", "setup-teardown"],
):
    create = BashOperator(task_id="create", bash_command="echo no capacity; exit 1").as_setup()
    work = BashOperator(task_id="work", bash_command="echo working")
    destroy = BashOperator(task_id="destroy", bash_command="echo destroyed").as_teardown(
        setups=create
    )
    create >> work >> destroy
