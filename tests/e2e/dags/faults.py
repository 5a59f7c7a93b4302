"""DAGs for the fault tests: every execution appends ``run_id task_id map_index
try_number`` to a ledger file (``@LEDGER@``), so the test can compare executions with
the attempts in the run log.

- ``fault_zombie``: ``slow`` hangs on its first try (the test kills its executor or
  clears it), succeeds at once on later tries; ``after`` runs last.
- ``fault_graceful``: ``short`` takes 3 s (the test SIGTERMs its executor meanwhile).
- ``fault_mark``: ``hang`` sleeps a minute on every try (the test marks it success).
- ``fault_pool``: three tasks in the one-slot pool ``solo``.
- ``fault_wide``: fifty quick tasks (the scheduler is killed during the run).
"""

import time
from datetime import timedelta

from ledgerflow.sdk import DAG, PythonOperator

LEDGER = "@LEDGER@"


def record(ti, run_id, try_number):
    with open(LEDGER, "a") as f:
        f.write(f"{run_id} {ti.task_id} {ti.map_index} {try_number}\n")


def slow(ti, run_id, try_number):
    record(ti, run_id, try_number)
    if try_number == 1:
        time.sleep(120)


def pause(seconds):
    def run(ti, run_id, try_number):
        record(ti, run_id, try_number)
        time.sleep(seconds)

    return run


with DAG("fault_zombie", schedule=None, tags=["e2e"]):
    s = PythonOperator(
        task_id="slow", python_callable=slow, retries=2, retry_delay=timedelta(seconds=1)
    )
    a = PythonOperator(task_id="after", python_callable=pause(0))
    s >> a

with DAG("fault_graceful", schedule=None, tags=["e2e"]):
    PythonOperator(task_id="short", python_callable=pause(3))

with DAG("fault_mark", schedule=None, tags=["e2e"]):
    h = PythonOperator(task_id="hang", python_callable=pause(120))
    PythonOperator(task_id="next", python_callable=pause(0)) << h

with DAG("fault_pool", schedule=None, tags=["e2e"]):
    for i in range(3):
        PythonOperator(
            task_id=f"p{i}", python_callable=pause(1), pool="solo", priority_weight=i + 1
        )

with DAG("fault_wide", schedule=None, tags=["e2e"]):
    for i in range(50):
        PythonOperator(task_id=f"w{i:02d}", python_callable=pause(0.2))
