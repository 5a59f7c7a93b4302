"""Params: defaults, JSON-schema validation (a trigger whose conf breaks the schema is
rejected), conf overriding defaults, and params read from the context and templates."""

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, Param, task

with DAG(
    dag_id="params_validation",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    params={
        "count": Param(3, type="integer", minimum=1, maximum=10, description="How many"),
        "mode": Param("fast", type="string", enum=["fast", "slow"]),
        "tags": Param(["daily"], type="array", items={"type": "string"}),
        "threshold": Param(0.5, type="number"),
    },
    tags=["example", "params"],
):

    @task
    def use_params(**context):
        params = context["params"]
        print(f"count={params['count']} mode={params['mode']} tags={','.join(params['tags'])}")
        return {
            "count": params["count"],
            "mode": params["mode"],
            "tags": params["tags"],
            "threshold": params["threshold"],
        }

    echo_params = BashOperator(
        task_id="echo_params",
        bash_command="echo count={{ params.count }} mode={{ params.mode }}",
    )
    use_params() >> echo_params
