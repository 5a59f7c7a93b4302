"""Variables and connections: ``Variable.get`` (plain, JSON, with a default), a
sensitive variable and a connection password masked in the log, ``BaseHook.get_connection``
and the ``var.value``, ``var.json`` and ``conn`` template variables.

Needs variables ``greeting``, ``pipeline_config`` (JSON), ``api_key`` and the connection
``warehouse``."""

from datetime import datetime

from airflow.hooks.base import BaseHook
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, Variable, task

with DAG(
    dag_id="variables_connections",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example", "config"],
):

    @task
    def read_variables():
        greeting = Variable.get("greeting")
        config = Variable.get("pipeline_config", deserialize_json=True)
        missing = Variable.get("not_set_anywhere", default="fallback")
        api_key = Variable.get("api_key")
        print(f"greeting={greeting} region={config['region']} missing={missing}")
        print(f"api_key={api_key}")
        return {"greeting": greeting, "batch": config["batch"], "missing": missing}

    @task
    def read_connection():
        conn = BaseHook.get_connection("warehouse")
        print(f"host={conn.host} port={conn.port} schema={conn.schema} login={conn.login}")
        print(f"password={conn.password}")
        return {
            "type": conn.conn_type,
            "host": conn.host,
            "port": conn.port,
            "schema": conn.schema,
            "sslmode": conn.extra_dejson["sslmode"],
        }

    BashOperator(
        task_id="templated",
        bash_command=(
            'echo "{{ var.value.greeting }} from {{ var.json.pipeline_config.region }}'
            ' via {{ conn.warehouse.host }}:{{ conn.warehouse.port }}"'
        ),
    )

    # Independent on purpose: each reads its own part of the configuration.
    read_variables()
    read_connection()
