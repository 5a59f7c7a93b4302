"""Micro-benchmark of scheduled runs in the pure core, on a fake clock.

1. **Due tick to first task.** One ``@daily`` DAG: the clock is moved to midnight and the
   scheduler's timer tick is decided; the time ``decide`` takes until the run's first
   work item exists (the core's share of "cron tick to first task running").
2. **Load.** ``--daily`` DAGs on ``@daily`` (each with one run in flight, as an active
   deployment has) and ``--fast`` DAGs on a 1-second ``timedelta`` schedule, driven
   like the service drives them for ``--seconds`` simulated seconds: each DAG is ticked
   when its ``wake_at`` comes, every attempt it queues starts and succeeds at once.
   Prints CPU time per simulated second and the memory the states hold (tracemalloc).

    uv run --frozen python -m tests.bench.schedule [--daily 1000] [--fast 100] [--seconds 30]
"""

from __future__ import annotations

import argparse
import heapq
import time
import tracemalloc
from datetime import UTC, datetime, timedelta

from ledgerflow.common.core import DagState, Tick, decide, empty
from ledgerflow.common.dagmodel import SerializedDag, SerializedTask, TimetableSpec
from ledgerflow.common.events import (
    Envelope,
    RunTaskAttempt,
    TaskAttemptStarted,
    TaskAttemptSucceeded,
    deterministic_id,
    make_envelope,
)

START = datetime(2026, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
DAILY = TimetableSpec(kind="cron_trigger", expression="@daily")
FAST = TimetableSpec(kind="delta_trigger", delta_seconds=1)


class Catalog:
    def __init__(self) -> None:
        self.dags: dict[str, SerializedDag] = {}

    def add(self, dag: SerializedDag) -> None:
        self.dags[f"v-{dag.dag_id}"] = dag

    def get(self, version_id: str) -> SerializedDag | None:
        return self.dags.get(version_id)

    def latest_version_id(self, dag_id: str) -> str | None:
        key = f"v-{dag_id}"
        return key if key in self.dags else None


def dag(dag_id: str, timetable: TimetableSpec, start: datetime) -> SerializedDag:
    return SerializedDag(
        dag_id=dag_id,
        fileloc="bench.py",
        timetable=timetable,
        start_date=start,
        catchup=False,
        tasks=(SerializedTask(task_id="t", operator="PythonOperator"),),
    )


def report(data: object, at: datetime) -> Envelope:
    ref = data
    return make_envelope(
        data,  # type: ignore[arg-type]
        id=deterministic_id(type(data).__name__, ref.run_id, ref.try_number),  # type: ignore[attr-defined]
        source="ledgerflow/executor",
        time=at,
        aggregate_key=ref.dag_id,  # type: ignore[attr-defined]
    )


def finish(state: DagState, work: list[RunTaskAttempt], now: datetime, catalog: Catalog):
    """Start and succeed every work item at once; returns the final decision."""
    decision = None
    for w in work:
        ref = {
            "dag_id": w.dag_id,
            "run_id": w.run_id,
            "task_id": w.task_id,
            "map_index": w.map_index,
            "try_number": w.try_number,
        }
        started = TaskAttemptStarted(**ref, start_date=now, hostname="h", executor_id="e")
        decision = decide(state, report(started, now), now=now, catalog=catalog)
        state = decision.state
        done = TaskAttemptSucceeded(**ref, end_date=now, executor_id="e")
        decision = decide(state, report(done, now), now=now, catalog=catalog)
        state = decision.state
    return decision


def items(decision) -> list[RunTaskAttempt]:  # type: ignore[no-untyped-def]
    return [w.data for w in decision.work if isinstance(w.data, RunTaskAttempt)]


def tick_to_first_task(repeat: int) -> list[float]:
    """Microseconds from a due midnight tick to the run's first work item."""
    out = []
    for i in range(repeat):
        catalog = Catalog()
        catalog.add(dag(f"d{i}", DAILY, START))
        midnight = datetime(2026, 6, 2, tzinfo=UTC)
        state = decide(
            empty(f"d{i}"), Tick(f"d{i}"), now=midnight - timedelta(seconds=1), catalog=catalog
        ).state
        t = time.perf_counter()
        d = decide(state, Tick(f"d{i}", full=False), now=midnight, catalog=catalog)
        out.append((time.perf_counter() - t) * 1e6)
        assert items(d), "the due tick queued no task"
    return out


def load(n_daily: int, n_fast: int, seconds: int, *, trace: bool) -> tuple[int, int, float]:
    """Drive the DAGs for ``seconds``; returns (runs created, decisions, CPU seconds)."""
    catalog = Catalog()
    states: dict[str, DagState] = {}
    wakes: list[tuple[datetime, str]] = []
    if trace:
        tracemalloc.start()
    for i in range(n_daily):
        d = dag(f"daily_{i}", DAILY, START)
        catalog.add(d)
        # One run in flight per daily DAG: the day's run, its task still running.
        dec = decide(empty(d.dag_id), Tick(d.dag_id), now=NOW, catalog=catalog)
        states[d.dag_id] = dec.state
        if dec.wake_at is not None:
            heapq.heappush(wakes, (dec.wake_at, d.dag_id))
    for i in range(n_fast):
        d = dag(f"fast_{i}", FAST, NOW - timedelta(seconds=5))
        catalog.add(d)
        states[d.dag_id] = empty(d.dag_id)
        heapq.heappush(wakes, (NOW, d.dag_id))
    decisions = runs = 0
    cpu = time.process_time()
    end = NOW + timedelta(seconds=seconds)
    while wakes and wakes[0][0] <= end:
        at, dag_id = heapq.heappop(wakes)
        dec = decide(states[dag_id], Tick(dag_id, full=False), now=at, catalog=catalog)
        decisions += 1
        runs += sum(1 for e in dec.events if e.data.type == "DagRunQueued")
        last = finish(dec.state, items(dec), at, catalog) or dec
        decisions += 2 * len(items(dec))
        states[dag_id] = last.state
        if last.wake_at is not None and last.wake_at <= end:
            heapq.heappush(wakes, (max(last.wake_at, at + timedelta(milliseconds=1)), dag_id))
    cpu = time.process_time() - cpu
    if trace:
        current, _peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"  memory held by the core's states and catalog at the end: {current / 1e6:.1f} MB")
    return runs, decisions, cpu


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--daily", type=int, default=1000)
    ap.add_argument("--fast", type=int, default=100)
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=200)
    args = ap.parse_args(argv)
    lat = sorted(tick_to_first_task(args.repeat))
    print(
        "due @daily tick -> first work item (core only): "
        f"p50 {lat[len(lat) // 2]:.0f} us, p95 {lat[int(len(lat) * 0.95)]:.0f} us"
    )
    print(f"{args.daily} @daily + {args.fast} 1-second DAGs, {args.seconds} simulated seconds:")
    runs, decisions, cpu = load(args.daily, args.fast, args.seconds, trace=False)
    print(f"  scheduled runs created {runs}, decisions {decisions}")
    print(f"  CPU {cpu:.3f} s, {cpu / args.seconds * 1000:.1f} ms per simulated second")
    load(args.daily, args.fast, args.seconds, trace=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
