"""The diamond, with every execution counted in a file and a slow middle.

``MARKER_DIR`` is replaced by the test with a folder of its own; each task execution
appends a line to ``executions.log`` there, so the test can compare executions with try
numbers. ``SLEEP`` makes ``b`` and ``c`` slow enough to kill the scheduler meanwhile.
"""

import os
import time
from datetime import timedelta

from ledgerflow.sdk import DAG, BashOperator, PythonOperator

MARKER_DIR = "@MARKER_DIR@"
SLEEP = float("@SLEEP@")


def mark(task_id):
    with open(os.path.join(MARKER_DIR, "executions.log"), "a") as f:
        f.write(task_id + "\n")


def a_fn():
    mark("a")
    return {"rows": 3}


def c_fn(try_number):
    mark("c")
    time.sleep(SLEEP)
    if try_number == 1:
        raise RuntimeError("first try fails on purpose")
    return "recovered"


def d_fn(ti):
    mark("d")
    print("d saw", ti.xcom_pull(task_ids="a"), ti.xcom_pull(task_ids="c"))


with DAG("counted_diamond", schedule=None, tags=["e2e"]):
    a = PythonOperator(task_id="a", python_callable=a_fn)
    b = BashOperator(
        task_id="b",
        bash_command=f'echo b >> "{MARKER_DIR}/executions.log"; sleep {SLEEP}; echo b-done',
    )
    c = PythonOperator(
        task_id="c", python_callable=c_fn, retries=2, retry_delay=timedelta(seconds=1)
    )
    d = PythonOperator(task_id="d", python_callable=d_fn)
    a >> [b, c] >> d
