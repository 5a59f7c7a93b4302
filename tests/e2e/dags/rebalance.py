"""DAG for the rebalance fault test: a 500-wide mapped task of short tasks. Every
execution appends ``run_id task_id map_index try_number`` to a ledger file
(``@LEDGER@``, opened with O_APPEND: each line is one ``write``), so the test can compare
executions with the attempts in the run log while executors join and leave."""

import os
import time
from datetime import timedelta

from ledgerflow.sdk import DAG, task

LEDGER = "@LEDGER@"
WIDTH = 500


with DAG("fault_rebalance", schedule=None, tags=["e2e"]):

    @task(retries=3, retry_delay=timedelta(seconds=1))
    def work(i, ti=None, run_id=None, try_number=None):
        line = f"{run_id} {ti.task_id} {ti.map_index} {try_number}\n".encode()
        fd = os.open(LEDGER, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
        time.sleep(0.1)

    work.expand(i=list(range(WIDTH)))
