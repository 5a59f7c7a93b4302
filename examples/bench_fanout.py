"""A 1,000-wide fan-out of no-op Python tasks, and 100 ms sleep tasks (``make bench``).

``bench_fanout_1000``: one task makes a list, 1,000 mapped no-op tasks consume it, one
task joins. ``bench_sleep_100ms``: 48 mapped tasks that each sleep 100 ms, to measure how
throughput grows with executor replicas.
"""

import time
from datetime import datetime

from ledgerflow.sdk import DAG, task

WIDTH = 1000
SLEEPERS = 48

with DAG(
    "bench_fanout_1000",
    description="1,000 mapped no-op Python tasks between a root and a join",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    max_active_tasks=10_000,
    tags=["example", "benchmark"],
):

    @task
    def root() -> list[int]:
        return list(range(WIDTH))

    @task
    def noop(i: int) -> None:
        return None

    @task(trigger_rule="all_done")
    def join() -> None:
        return None

    noop.expand(i=root()) >> join()


with DAG(
    "bench_sleep_100ms",
    description="48 mapped tasks sleeping 100 ms each",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    max_active_tasks=10_000,
    tags=["example", "benchmark"],
):

    @task
    def sleep(i: int) -> None:
        time.sleep(0.1)

    sleep.expand(i=list(range(SLEEPERS)))
