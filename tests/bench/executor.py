"""``make bench`` (executor part): fan-out throughput and scaling with executor replicas.

- ``fanout``: ``bench_fanout_1000`` (examples/bench_fanout.py): 1,000 mapped no-op Python
  tasks. Throughput = tasks / (last end - first start), from the executor's clocks.
- ``scaling``: ``bench_sleep_100ms`` (48 tasks sleeping 100 ms) with 1, 2, 3 and 4
  executor replicas of ``--slots`` each: tasks per second for each replica count.

Every service is its own process, on the Kafka and Postgres given by
``LEDGERFLOW_KAFKA_BOOTSTRAP`` / ``LEDGERFLOW_DATABASE_URL``.

    uv run python -m tests.bench.executor [--part fanout|scaling|all] [--slots N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from tests.e2e.conftest import _create_db, _drop_db
from tests.e2e.system import SERVICES, System

ROOT = Path(__file__).resolve().parents[2]
FANOUT_DAG = "bench_fanout_1000"
SLEEP_DAG = "bench_sleep_100ms"


@dataclass
class BenchSystem(System):
    """A system with more partitions (so 4+ executors share work) and N executors."""

    executor_slots: int = 8
    work_partitions: int = 8

    @property
    def env(self) -> dict[str, str]:
        env = super().env
        env.update(
            LEDGERFLOW_PARTITIONS=str(self.work_partitions),
            LEDGERFLOW_WORK_PARTITIONS=str(self.work_partitions),
        )
        return env

    def start_executor(self, n: int) -> None:
        name = "executor" if n == 0 else f"executor-{n}"
        SERVICES.setdefault(
            name, ["executor", "--queue", "default", "--slots", str(self.executor_slots)]
        )
        self.start(name)


async def _attempt_times(
    db_url: str, dag_id: str, run_id: str, task_id: str
) -> list[tuple[datetime, datetime]]:
    conn = await asyncpg.connect(db_url, server_settings={"search_path": "projection"})
    try:
        rows = await conn.fetch(
            "SELECT start_date, end_date FROM task_attempts "
            "WHERE dag_id = $1 AND run_id = $2 AND task_id = $3 AND start_date IS NOT NULL "
            "AND end_date IS NOT NULL",
            dag_id,
            run_id,
            task_id,
        )
    finally:
        await conn.close()
    return [(r["start_date"], r["end_date"]) for r in rows]


def _trigger_and_wait(system: System, dag_id: str, timeout: float = 300) -> tuple[str, Any]:
    with system.client() as c:
        r = c.post(f"/api/v2/dags/{dag_id}/dagRuns", json={})
        r.raise_for_status()
        run_id = r.json()["dag_run_id"]
    run = system.wait_run(dag_id, run_id, timeout=timeout)
    return run_id, run


def _rate(times: list[tuple[datetime, datetime]], count: int) -> float:
    first = min(s for s, _ in times)
    last = max(e for _, e in times)
    return count / max(1e-9, (last - first).total_seconds())


def _system(kafka: str, db_url: str, slots: int) -> BenchSystem:
    workdir = Path(tempfile.mkdtemp(prefix="ledgerflow-bench-exec-"))
    return BenchSystem(
        kafka_bootstrap=kafka, database_url=db_url, workdir=workdir, executor_slots=slots
    )


def _submit(system: System) -> None:
    with system.client() as c:
        r = c.post(
            "/api/v2/dagFiles",
            json={
                "filename": "bench_fanout.py",
                "content": (ROOT / "examples/bench_fanout.py").read_text(),
            },
        )
        r.raise_for_status()
    system.wait_dag(FANOUT_DAG)
    system.wait_dag(SLEEP_DAG)


def fanout(kafka: str, base_db: str, slots: int, executors: int) -> list[str]:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    db_url = asyncio.run(_create_db(base_db, name))
    system = _system(kafka, db_url, slots)
    rows: list[str] = []
    try:
        for service in ("projector", "api", "scheduler"):
            system.start(service)
        for n in range(executors):
            system.start_executor(n)
        system.wait_healthy()
        _submit(system)
        _trigger_and_wait(system, SLEEP_DAG)  # warm-up: fork servers, caches
        for _ in range(2):
            t0 = time.monotonic()
            run_id, run = _trigger_and_wait(system, FANOUT_DAG)
            wall = time.monotonic() - t0
            assert run["state"] == "success", run
            times = asyncio.run(_attempt_times(db_url, FANOUT_DAG, run_id, "noop"))
            assert len(times) == 1000, len(times)
            rate = _rate(times, len(times))
            rows.append(
                f"| 1,000-wide fan-out ({executors} executors x {slots} slots) | "
                f"{rate:,.0f} tasks/s | {wall:.2f} s trigger -> run done |"
            )
    finally:
        system.stop_all()
        asyncio.run(_drop_db(base_db, name))
    return rows


def scaling(kafka: str, base_db: str, slots: int, max_executors: int = 4) -> list[str]:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    db_url = asyncio.run(_create_db(base_db, name))
    system = _system(kafka, db_url, slots)
    rows: list[str] = []
    try:
        for service in ("projector", "api", "scheduler"):
            system.start(service)
        system.start_executor(0)
        system.wait_healthy()
        _submit(system)
        base = None
        for n in range(1, max_executors + 1):
            if n > 1:
                system.start_executor(n - 1)
                time.sleep(6)  # let the group rebalance before measuring
            _trigger_and_wait(system, SLEEP_DAG)  # warm-up with this many replicas
            run_id, run = _trigger_and_wait(system, SLEEP_DAG)
            assert run["state"] == "success", run
            times = asyncio.run(_attempt_times(db_url, SLEEP_DAG, run_id, "sleep"))
            rate = _rate(times, len(times))
            base = base or rate
            rows.append(
                f"| 100 ms sleep tasks, {n} executor(s) x {slots} slots | {rate:.1f} tasks/s "
                f"| x{rate / base:.2f} vs 1 replica (ideal x{n}) |"
            )
    finally:
        system.stop_all()
        asyncio.run(_drop_db(base_db, name))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", choices=["fanout", "scaling", "all"], default="all")
    ap.add_argument("--slots", type=int, default=8, help="slots per executor (fan-out)")
    ap.add_argument("--executors", type=int, default=2, help="executors for the fan-out")
    ap.add_argument("--scaling-slots", type=int, default=2)
    args = ap.parse_args(argv)
    kafka = os.environ["LEDGERFLOW_KAFKA_BOOTSTRAP"]
    base_db = os.environ["LEDGERFLOW_DATABASE_URL"]
    rows: list[str] = []
    if args.part in ("fanout", "all"):
        rows += fanout(kafka, base_db, args.slots, args.executors)
    if args.part in ("scaling", "all"):
        rows += scaling(kafka, base_db, args.scaling_slots)
    print()
    print("| executor benchmark | throughput | note |")
    print("|---|---:|---|")
    for row in rows:
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
