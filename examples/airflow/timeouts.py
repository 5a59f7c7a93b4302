"""``execution_timeout``: a Python task and a bash task that run too long are stopped and
fail (the bash one after its retry, since a timeout may be retried); a quick task with a
generous timeout succeeds."""

import time
from datetime import datetime, timedelta

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, task

with DAG(
    dag_id="timeouts",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example", "timeouts"],
):

    @task(execution_timeout=timedelta(seconds=1))
    def too_slow():
        print("starting slow work")
        time.sleep(30)
        print("finished slow work")

    bash_slow = BashOperator(
        task_id="bash_slow",
        bash_command="echo sleeping; sleep 30; echo woke up",
        execution_timeout=timedelta(seconds=1),
        retries=1,
        retry_delay=timedelta(seconds=0),
    )

    @task(execution_timeout=timedelta(seconds=10))
    def quick():
        return "fast enough"

    quick() >> [too_slow(), bash_slow]
