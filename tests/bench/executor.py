"""``make bench`` (executor part): fan-out throughput and scaling with executor replicas.

- ``fanout``: ``bench_fanout_1000`` (examples/bench_fanout.py): 1,000 mapped no-op Python
  tasks. Throughput = tasks / (last end - first start), from the executor's clocks.
- ``scaling``: ``bench_sleep_100ms`` (48 tasks sleeping 100 ms) with 1, 2, 3 and 4
  executor replicas of ``--scaling-slots`` each (default: a series with 1 slot, then one
  with 2): tasks per second for each replica count.
- ``floor``: what one attempt costs on this machine with no Kafka, scheduler or
  database at all: the no-op task of the fan-out run through the executor's own
  ``TaskProcess`` and fork server, as many at once as there are cores, and a bare
  ``fork()`` + ``_exit`` of a process that imported what the fork server imports. CPU
  per attempt (the executor's side, the fork server with its reaped children) bounds
  what any fan-out can reach while every attempt is its own process.

Every service is its own process, on the Kafka and Postgres given by
``LEDGERFLOW_KAFKA_BOOTSTRAP`` / ``LEDGERFLOW_DATABASE_URL``.

    uv run python -m tests.bench.executor [--part fanout|scaling|floor|all] [--slots N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
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
from tests.e2e.system import System

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
        # Explicit arguments: ``SERVICES["executor"]`` (the e2e default) has its own
        # slot count, which must not leak into the benchmark's replicas.
        self.start(
            name, args=["executor", "--queue", "default", "--slots", str(self.executor_slots)]
        )


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


_CPU_GROUPS = (
    ("forkserver", "fork servers + attempts"),
    ("ledgerflow.cli executor", "executors"),
    ("ledgerflow.cli scheduler", "scheduler"),
    ("ledgerflow.cli projector", "projector"),
    ("ledgerflow.cli api", "api"),
    ("kafka.Kafka", "kafka"),
    ("postgres", "postgres"),
)


def _cpu_by_group() -> dict[str, float]:
    """CPU seconds so far (own + reaped children) of every process on the machine,
    summed by what it is (services by their command line, Kafka, Postgres)."""
    totals: dict[str, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            seconds = _proc_cpu_seconds(int(entry))
        except OSError:
            continue
        group = next((g for marker, g in _CPU_GROUPS if marker in cmd), None)
        if group is not None:
            totals[group] = totals.get(group, 0.0) + seconds
    return totals


def _cpu_row(before: dict[str, float], after: dict[str, float], tasks: int) -> str:
    per_task = {g: (after.get(g, 0.0) - before.get(g, 0.0)) * 1000 / tasks for _, g in _CPU_GROUPS}
    parts = ", ".join(f"{g} {v:.1f}" for g, v in per_task.items())
    return (
        f"| CPU per task of that run (ms) | {sum(per_task.values()):.1f} | {parts} "
        "(process CPU from /proc, idle processes included) |"
    )


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
            t0, cpu0 = time.monotonic(), _cpu_by_group()
            run_id, run = _trigger_and_wait(system, FANOUT_DAG)
            wall, cpu1 = time.monotonic() - t0, _cpu_by_group()
            assert run["state"] == "success", run
            times = asyncio.run(_attempt_times(db_url, FANOUT_DAG, run_id, "noop"))
            assert len(times) == 1000, len(times)
            rate = _rate(times, len(times))
            rows.append(
                f"| 1,000-wide fan-out ({executors} executors x {slots} slots) | "
                f"{rate:,.0f} tasks/s | {wall:.2f} s trigger -> run done |"
            )
            rows.append(_cpu_row(cpu0, cpu1, len(times)))
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


def _proc_cpu_seconds(pid: int) -> float:
    """utime + stime + reaped children's, from ``/proc/<pid>/stat``."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _noop_request(map_index: int) -> dict[str, Any]:
    return {
        "source": (ROOT / "examples/bench_fanout.py").read_text(),
        "filename": "bench_fanout.py",
        "dag_id": FANOUT_DAG,
        "task_id": "noop",
        "run_id": "manual__floor",
        "map_index": map_index,
        "map_length": 1000,
        "try_number": 1,
        "max_tries": 1,
        "conf": {},
        "logical_date": None,
        "run_type": "manual",
        "xcoms": [
            {"task_id": "root", "key": "return_value", "map_index": -1, "value": list(range(1000))}
        ],
        "variables": {},
        "connections": {},
        "xcom_max_bytes": 1 << 20,
    }


async def _attempts_floor(
    count: int, concurrency: int, *, warm: bool
) -> tuple[float, float, float]:
    """(attempts/s, executor-side CPU ms per attempt, CPU ms of the fork server, its
    zygote (``warm``, ADR 0017) and the attempts)."""
    from ledgerflow.executor.child import TaskProcess, child_environment
    from ledgerflow.executor.forkserver import ForkServer

    server = ForkServer(env=child_environment(os.environ))
    await server.start()
    try:
        gate = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with gate:
                process = TaskProcess(
                    _noop_request(i), on_line=lambda *_: None, fork_server=server, warm=warm
                )
                await process.start()
                outcome = await process.wait()
                assert outcome.status == "success", outcome

        await asyncio.gather(*(one(i) for i in range(20)))  # warm-up
        assert server._proc is not None
        spid = server._proc.pid

        def family() -> float:  # the server, and its zygote with the attempts it reaped
            with open(f"/proc/{spid}/task/{spid}/children") as f:
                kids = [int(p) for p in f.read().split()]
            return _proc_cpu_seconds(spid) + sum(_proc_cpu_seconds(k) for k in kids)

        s0, c0, t0 = family(), time.process_time(), time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))
        wall = time.perf_counter() - t0
        client = (time.process_time() - c0) * 1000 / count
        forked = (family() - s0) * 1000 / count
        return count / wall, client, forked
    finally:
        await server.stop()


_BARE_FORK = """
import importlib, os, sys, time
from ledgerflow.executor.forkserver import DEFAULT_PRELOAD
for name in DEFAULT_PRELOAD:
    importlib.import_module(name)
import gc
gc.collect(); gc.freeze()  # as the fork server does
count = int(sys.argv[1])
before, parent0 = os.times(), time.process_time()
for _ in range(count):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
after = os.times()
children = after.children_user - before.children_user
children += after.children_system - before.children_system
print((time.process_time() - parent0 + children) * 1000 / count)
"""


def _bare_fork_ms(count: int = 500) -> float:
    """CPU ms (parent + child) of fork() + _exit(0) in a fresh process that imported
    the fork server's preload set: the least a process per attempt can cost here."""
    out = subprocess.run(
        [sys.executable, "-c", _BARE_FORK, str(count)],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def floor(count: int = 400) -> list[str]:
    cores = os.cpu_count() or 1
    rows = []
    for warm in (False, True):
        rate, client, forked = asyncio.run(_attempts_floor(count, cores, warm=warm))
        how = "from the DAG file's zygote" if warm else "each loading its DAG file"
        rows.append(
            f"| no-op attempts through TaskProcess + fork server, {how}, no Kafka "
            f"({cores} at once) | {rate:,.0f} attempts/s | CPU per attempt: executor side "
            f"{client:.1f} ms, fork server + zygote + attempt {forked:.1f} ms |"
        )
    bare = _bare_fork_ms()
    return [
        *rows,
        f"| bare fork() + _exit(0) of the warm process | {1000 * cores / bare:,.0f} forks/s "
        f"if the {cores} cores did nothing else | {bare:.2f} ms CPU per fork (parent + child) |",
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", choices=["fanout", "scaling", "floor", "all"], default="all")
    ap.add_argument("--slots", type=int, default=8, help="slots per executor (fan-out)")
    ap.add_argument("--executors", type=int, default=2, help="executors for the fan-out")
    ap.add_argument(
        "--scaling-slots", default="1,2", help="slots per replica, one series per value"
    )
    args = ap.parse_args(argv)
    kafka = os.environ["LEDGERFLOW_KAFKA_BOOTSTRAP"]
    base_db = os.environ["LEDGERFLOW_DATABASE_URL"]
    rows: list[str] = []
    if args.part in ("fanout", "all"):
        rows += fanout(kafka, base_db, args.slots, args.executors)
    if args.part in ("scaling", "all"):
        for slots in (int(v) for v in args.scaling_slots.split(",")):
            rows += scaling(kafka, base_db, slots)
    if args.part in ("floor", "all"):
        rows += floor()
    print()
    print("| executor benchmark | throughput | note |")
    print("|---|---:|---|")
    for row in rows:
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
