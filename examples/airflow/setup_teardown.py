"""Setup and teardown with the ``@setup``/``@teardown`` decorators: the work fails, the
teardown still runs (``all_done_setup_success``), the task after the work ends
``upstream_failed`` and the run fails."""

from datetime import datetime

from airflow.sdk import DAG, setup, task, teardown

with DAG(
    dag_id="setup_teardown",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example", "setup-teardown"],
):

    @setup
    def create_cluster():
        print("cluster up")
        return "cluster-1"

    @task
    def run_query(cluster: str):
        print(f"querying {cluster}")
        raise ValueError("query failed")

    @teardown
    def delete_cluster(cluster: str):
        print(f"deleting {cluster}")

    @task
    def publish():
        print("not reached")

    cluster = create_cluster()
    query = run_query(cluster)
    query >> delete_cluster(cluster)
    query >> publish()
