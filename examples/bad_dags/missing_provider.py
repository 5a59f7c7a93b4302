"""Bad on purpose: an Airflow provider ledgerflow does not ship, imported on line 6."""

from datetime import datetime

from airflow.sdk import DAG
from airflow.providers.snowflake.operators.snowflake import SnowflakeOperator

with DAG("bad_missing_provider", schedule=None, start_date=datetime(2024, 1, 1)):
    SnowflakeOperator(task_id="load", sql="SELECT 1", snowflake_conn_id="snowflake_default")
