"""``make bench``: latency of a 20-task chain of no-op Python tasks, from recorded events.

Starts a whole system (every service its own process) on the Kafka and Postgres given by
``LEDGERFLOW_KAFKA_BOOTSTRAP`` / ``LEDGERFLOW_DATABASE_URL``, runs the chain a few times,
and prints a table. A hop is the time from one task's end to the next task's start, both
as the executor recorded them (``TaskAttemptSucceeded.end_date`` ->
``TaskAttemptStarted.start_date``).

    uv run python -m tests.bench.run [--runs N]
        [--only chain|executor|tracing|projector|schedule]

Then the executor benchmark (``tests/bench/executor.py``: 1,000-wide fan-out of no-op
tasks, and 100 ms sleep tasks on 1 to 4 executor replicas), then the tracing micro-benchmark (``tests/bench/tracing.py``: the hot path with tracing
absent, off, and on with a no-op exporter), then the projector benchmark (``tests/bench/projector.py``): sustained rate and lag of
the projection under 5,000 run-log and log-chunk events/s, then the scheduling benchmark
(``tests/bench/schedule_live.py``, issue 6): due cron tick on a fake clock -> first task
running, and a scheduler process's memory and CPU with 1,000 ``@daily`` plus 100
1-second DAGs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

from tests.e2e.conftest import _create_db, _drop_db
from tests.e2e.system import System

ROOT = Path(__file__).resolve().parents[2]


def ts(s: str) -> datetime:
    return datetime.fromisoformat(s)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", choices=("chain", "executor", "projector", "tracing", "schedule"))
    ap.add_argument("--projector-rate", type=int, default=5000)
    ap.add_argument("--projector-seconds", type=float, default=20.0)
    ap.add_argument("--schedule-repeat", type=int, default=20)
    ap.add_argument("--schedule-seconds", type=float, default=60.0)
    args = ap.parse_args()
    # The executor part first: its fan-out sends some 16,000 records through the broker
    # that ``make bench`` started seconds ago, so the chain then measures hops on a
    # broker whose JVM has compiled its hot paths, as a running system's has. On the
    # cold broker the chain's Kafka transit was 6.9-9.3 ms per hop, on a warm one
    # 2.4-2.9 ms (docs/performance.md).
    if args.only in (None, "executor"):
        from tests.bench import executor

        executor.main([])
    if args.only in (None, "chain"):
        chain(args)
    if args.only in (None, "tracing"):
        from tests.bench import tracing

        tracing.main([])
    if args.only in (None, "projector"):
        from tests.bench import projector

        projector.main(
            ["--rate", str(args.projector_rate), "--seconds", str(args.projector_seconds)]
        )
    if args.only in (None, "schedule"):
        from tests.bench import schedule_live

        schedule_live.main(
            ["--repeat", str(args.schedule_repeat), "--seconds", str(args.schedule_seconds)]
        )
    return 0


def chain(args: argparse.Namespace) -> None:
    """The 20-task chain through every service."""
    kafka = os.environ["LEDGERFLOW_KAFKA_BOOTSTRAP"]
    base_db = os.environ["LEDGERFLOW_DATABASE_URL"]
    name = f"bench_{uuid.uuid4().hex[:8]}"
    db_url = asyncio.run(_create_db(base_db, name))
    workdir = Path(tempfile.mkdtemp(prefix="ledgerflow-bench-"))
    system = System(kafka_bootstrap=kafka, database_url=db_url, workdir=workdir)
    hops: list[float] = []
    first_task: list[float] = []
    totals: list[float] = []
    try:
        system.start_all()
        with system.client() as c:
            r = c.post(
                "/api/v2/dagFiles",
                json={
                    "filename": "chain20.py",
                    "content": (ROOT / "examples/chain20.py").read_text(),
                },
            )
            r.raise_for_status()
        system.wait_dag("bench_chain_20")
        # One run first, not measured: the broker's JVM (started a moment ago by
        # with-infra.sh) and every service's first-time paths (fork server, zygote,
        # caches) warm up, as they are in a system that has been running.
        with system.client() as c:
            run_id = c.post("/api/v2/dags/bench_chain_20/dagRuns", json={}).json()["dag_run_id"]
        system.wait_run("bench_chain_20", run_id)
        for _ in range(args.runs):
            with system.client() as c:
                run_id = c.post("/api/v2/dags/bench_chain_20/dagRuns", json={}).json()["dag_run_id"]
            run = system.wait_run("bench_chain_20", run_id)
            assert run["state"] == "success", run
            with system.client() as c:
                tis = c.get(f"/api/v2/dags/bench_chain_20/dagRuns/{run_id}/taskInstances").json()
            ordered = sorted(tis["task_instances"], key=lambda t: ts(t["start_date"]))
            for prev, nxt in zip(ordered, ordered[1:], strict=False):
                hops.append((ts(nxt["start_date"]) - ts(prev["end_date"])).total_seconds() * 1000)
            first_task.append(
                (ts(ordered[0]["start_date"]) - ts(run["queued_at"])).total_seconds() * 1000
            )
            totals.append(
                (ts(ordered[-1]["end_date"]) - ts(ordered[0]["start_date"])).total_seconds()
            )
            time.sleep(0.2)
    finally:
        system.stop_all()
        asyncio.run(_drop_db(base_db, name))

    print()
    print(
        f"20-task chain of no-op Python tasks, {args.runs} runs, {len(hops)} hops "
        f"(executor clock: previous end -> next start)"
    )
    print()
    print("| metric | p50 | p95 | max |")
    print("|---|---:|---:|---:|")
    print(f"| per-hop latency (ms) | {pct(hops, 50):.1f} | {pct(hops, 95):.1f} | {max(hops):.1f} |")
    print(
        f"| trigger (queued_at) -> first task start (ms) | {pct(first_task, 50):.1f} | "
        f"{pct(first_task, 95):.1f} | {max(first_task):.1f} |"
    )
    print(
        f"| first start -> last end of a run (s) | {statistics.median(totals):.2f} | "
        f"{pct(totals, 95):.2f} | {max(totals):.2f} |"
    )


if __name__ == "__main__":
    sys.exit(main())
