"""Sensors in reschedule mode: each poke is its own short attempt and the worker slot is
free in between. ``wait_for_marker`` waits for a file that ``write_marker`` creates a
couple of seconds later; ``wait_until`` is a DateTimeSensor with a templated target in
the past; a soft sensor times out as skipped and a hard one as failed (not retried), and
``report`` (``all_done``) runs after all of them."""

import os
import time
from datetime import datetime, timedelta

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.sensors.date_time import DateTimeSensor
from airflow.providers.standard.sensors.python import PythonSensor
from airflow.sdk import DAG, task
from airflow.utils.trigger_rule import TriggerRule


def marker_path(run_id):
    safe = "".join(c if c.isalnum() else "_" for c in run_id)
    return os.path.join("/tmp", f"airflow-corpus-marker-{safe}")


def marker_exists(run_id):
    path = marker_path(run_id)
    found = os.path.exists(path)
    print(f"looking for {os.path.basename(path)}: {'found' if found else 'not yet'}")
    return found


with DAG(
    dag_id="sensors_reschedule",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example", "sensors"],
):

    @task
    def prepare(run_id=None):
        path = marker_path(run_id)
        if os.path.exists(path):
            os.remove(path)
        print("marker cleared")

    @task
    def write_marker(run_id=None):
        time.sleep(2)
        with open(marker_path(run_id), "w") as f:
            f.write("ready")
        print("marker written")

    wait_for_marker = PythonSensor(
        task_id="wait_for_marker",
        python_callable=marker_exists,
        op_kwargs={"run_id": "{{ run_id }}"},
        mode="reschedule",
        poke_interval=0.5,
        timeout=60,
    )
    wait_until = DateTimeSensor(
        task_id="wait_until",
        target_time="{{ (logical_date + macros.timedelta(seconds=1)).isoformat() }}",
        mode="reschedule",
        poke_interval=0.5,
    )
    done = EmptyOperator(task_id="done")

    cleared = prepare()
    cleared >> [write_marker(), wait_for_marker] >> done
    wait_until >> done

    soft = PythonSensor(
        task_id="soft_reschedule",
        python_callable=lambda: False,
        mode="reschedule",
        poke_interval=0.3,
        timeout=1.5,
        soft_fail=True,
    )
    after_soft = EmptyOperator(task_id="after_soft")
    soft >> after_soft

    hard = PythonSensor(
        task_id="hard_reschedule",
        python_callable=lambda: False,
        mode="reschedule",
        poke_interval=0.3,
        timeout=1.5,
        retries=1,
        retry_delay=timedelta(seconds=0),
    )
    report = EmptyOperator(task_id="report", trigger_rule=TriggerRule.ALL_DONE)
    hard >> report
