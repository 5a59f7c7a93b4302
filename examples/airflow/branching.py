"""Branching: BranchPythonOperator choosing from ``dag_run.conf``, ``@task.branch``
following two of three paths, joins with ``none_failed_min_one_success``, skip
propagation down the branch not taken, and Airflow's "empty branch" rule: ``join_direct``
is a direct downstream of ``pick`` but also downstream of the followed ``left``, so it
is not skipped."""

from datetime import datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.python import BranchPythonOperator
from airflow.sdk import DAG, task
from airflow.utils.trigger_rule import TriggerRule


def choose_route(**context):
    route = context["dag_run"].conf.get("route", "b")
    print(f"route from conf: {route}")
    return f"path_{route}"


with DAG(
    dag_id="branching",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example", "branching"],
):
    branch = BranchPythonOperator(task_id="branch", python_callable=choose_route)
    path_a = EmptyOperator(task_id="path_a")
    path_b = EmptyOperator(task_id="path_b")
    after_b = EmptyOperator(task_id="after_b")
    join = EmptyOperator(task_id="join", trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)

    branch >> [path_a, path_b]
    path_b >> after_b
    [path_a, after_b] >> join

    @task.branch
    def pick():
        return ["left", "middle"]

    chosen = pick()
    left = EmptyOperator(task_id="left")
    middle = EmptyOperator(task_id="middle")
    right = EmptyOperator(task_id="right")
    join_direct = EmptyOperator(task_id="join_direct")

    chosen >> [left, middle, right]
    chosen >> join_direct
    left >> join_direct
