"""Sensors in poke mode: a PythonSensor that is ready on its third poke, ``@task.sensor``
returning a ``PokeReturnValue`` whose value becomes the XCom, a TimeDeltaSensor, a soft
sensor timing out (skipped) and a hard one timing out (failed at once: a sensor timeout
is never retried, whatever ``retries`` says)."""

from datetime import datetime, timedelta

from airflow.providers.standard.sensors.python import PythonSensor
from airflow.providers.standard.sensors.time_delta import TimeDeltaSensor
from airflow.sdk import DAG, task
from airflow.sensors.base import PokeReturnValue

_pokes = {"count": 0}


def ready_on_third_poke():
    # Poke mode keeps one process for the whole wait, so this counter survives pokes.
    _pokes["count"] += 1
    print(f"poke number {_pokes['count']}")
    return _pokes["count"] >= 3


def never_ready():
    return False


with DAG(
    dag_id="sensors_poke",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example", "sensors"],
):
    wait_for_ready = PythonSensor(
        task_id="wait_for_ready",
        python_callable=ready_on_third_poke,
        poke_interval=0.2,
        timeout=20,
        mode="poke",
    )

    @task.sensor(poke_interval=0.2, timeout=10, mode="poke")
    def wait_for_value() -> PokeReturnValue:
        return PokeReturnValue(is_done=True, xcom_value={"rows": 42})

    @task
    def use_value(value):
        print(f"sensor said rows={value['rows']}")
        return value["rows"]

    value = wait_for_value()
    used = use_value(value)
    wait_for_ready >> used

    short_delay = TimeDeltaSensor(
        task_id="short_delay", delta=timedelta(seconds=1), poke_interval=0.2, mode="poke"
    )

    soft_timeout = PythonSensor(
        task_id="soft_timeout",
        python_callable=never_ready,
        poke_interval=0.2,
        timeout=1,
        soft_fail=True,
    )
    hard_timeout = PythonSensor(
        task_id="hard_timeout",
        python_callable=never_ready,
        poke_interval=0.2,
        timeout=1,
        retries=2,
        retry_delay=timedelta(seconds=0),
    )

    @task
    def after_hard():
        print("never runs")

    hard_timeout >> after_hard()
