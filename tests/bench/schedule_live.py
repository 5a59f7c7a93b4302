"""``make bench`` scheduling part (issue 6): a real scheduler on real Kafka.

1. **Due cron tick -> first task running.** An in-process scheduler
   (``scheduler.service.run(settings, clock=fake)``) and an in-process executor
   (``executor.service.run``) on their own topic prefix; one ``@daily`` DAG with one no-op
   Python task, published as a DAG version. Each round moves the fake clock to the next
   midnight, sets the scheduler's ``wakeup`` (as a real clock's timer would fire) and
   measures wall time from the move to the attempt's ``TaskAttemptStarted``: by the
   executor's ``start_date`` and by when this process saw the event on the run log. A few
   rounds without the wakeup show the loop's own (at most 1 s) wait on a fake clock.
2. **Load.** ``python -m ledgerflow.cli scheduler`` as its own process, 1,000 ``@daily``
   DAGs plus 100 on ``timedelta(seconds=1)`` (one no-op task each, no executor, so the
   1-second DAGs get ``max_active_runs=100000`` and their runs stay queued: the scheduler
   carries a growing backlog). RSS and CPU sampled from ``/proc/<pid>``; the 1-second runs
   due in the steady window (by ``run_after``) are counted from the run log.
3. The core-only microbenchmark (``tests/bench/schedule.py``) as a small table.

    uv run --frozen python -m tests.bench.schedule_live [--repeat 20] [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]
from ledgerflow.common.dagmodel import SerializedDag
from ledgerflow.common.events import (
    DagRunQueued,
    DagVersionPublished,
    Envelope,
    MalformedMessage,
    TaskAttemptStarted,
    decode,
    deterministic_id,
    make_envelope,
)
from ledgerflow.common.kafka_io import EventProducer, consumer_config, ensure_topics
from ledgerflow.common.settings import Settings

KAFKA_ENV = "LEDGERFLOW_KAFKA_BOOTSTRAP"
SOURCE = "tests/bench"
DAILY = """\
from datetime import datetime, timedelta, timezone

from ledgerflow.sdk import DAG, task

with DAG(
    "{dag_id}",
    schedule={schedule},
    start_date=datetime({year}, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs={max_active_runs},
):
    @task
    def noop():
        return None

    noop()
"""
MIDNIGHT = datetime(2031, 1, 2, tzinfo=UTC)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def load_avg() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def dag_source(dag_id: str, schedule: str, *, year: int, max_active_runs: int = 16) -> str:
    return DAILY.format(
        dag_id=dag_id, schedule=schedule, year=year, max_active_runs=max_active_runs
    )


def parse_one(source: str) -> SerializedDag:
    from ledgerflow.sdk.parse import parse

    result = parse(source, "bench_schedule.py")
    assert result["ok"], result
    return SerializedDag.model_validate(result["dags"][0])


def version(dag: SerializedDag, source: str) -> Envelope:
    data = DagVersionPublished(
        dag_id=dag.dag_id,
        version_id=f"bench-{dag.dag_id}",
        dag=dag,
        source_code=source,
        filename="bench_schedule.py",
    )
    return make_envelope(
        data,
        id=deterministic_id("DagVersionPublished", data.version_id),
        source=SOURCE,
        time=datetime.now(UTC),
        aggregate_key=dag.dag_id,
    )


async def publish(settings: Settings, versions: list[Envelope]) -> None:
    async with EventProducer(settings, source=SOURCE) as producer:
        futures = [await producer.send_soon(settings.topics.dags, env) for env in versions]
        await asyncio.gather(*futures)


async def open_reader(settings: Settings, topic: str) -> tuple[AIOKafkaConsumer, list[Any]]:
    consumer = AIOKafkaConsumer(**consumer_config(settings))
    await consumer.start()
    parts = consumer.partitions_for_topic(topic)
    while not parts:
        await asyncio.sleep(0.05)
        await consumer._client.force_metadata_update()  # noqa: SLF001 - no public call
        parts = consumer.partitions_for_topic(topic)
    tps = [TopicPartition(topic, p) for p in sorted(parts)]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    return consumer, tps


async def read_all(settings: Settings, topic: str) -> list[tuple[float, Envelope]]:
    """Every envelope on ``topic`` up to its current end, with its record's timestamp (s,
    the producer's wall clock when it sent it)."""
    consumer, tps = await open_reader(settings, topic)
    out: list[tuple[float, Envelope]] = []
    try:
        ends = await consumer.end_offsets(tps)
        remaining = {tp for tp in tps if ends[tp] > 0}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=500)
            for records in batch.values():
                for r in records:
                    with contextlib.suppress(MalformedMessage):
                        out.append((r.timestamp / 1000, decode(r.value)))
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return out


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class StartedWatch:
    """Follows the run log; notes when each run's first ``TaskAttemptStarted`` is seen."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.seen: dict[str, tuple[float, datetime]] = {}  # run_id -> (wall seen, start)
        self.changed = asyncio.Event()

    async def follow(self) -> None:
        consumer, _ = await open_reader(self.settings, self.settings.topics.runs)
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=200)
                now = time.time()
                for records in batch.values():
                    for r in records:
                        try:
                            env = decode(r.value)
                        except MalformedMessage:
                            continue
                        if isinstance(env.data, TaskAttemptStarted):
                            self.seen.setdefault(env.data.run_id, (now, env.data.start_date))
                            self.changed.set()
        finally:
            await consumer.stop()

    async def wait(self, run_id: str, timeout: float) -> tuple[float, datetime]:
        deadline = time.monotonic() + timeout
        while run_id not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no TaskAttemptStarted for {run_id} in {timeout} s")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(left, 1.0))
        return self.seen[run_id]


async def _stop(tasks: list[asyncio.Task[Any]]) -> None:
    for t in tasks:
        t.cancel()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)


async def tick_to_task(kafka: str, repeat: int, unwoken: int) -> dict[str, list[float]]:
    """Part 1; returns the latencies (ms) per measurement."""
    from ledgerflow.executor import service as executor
    from ledgerflow.scheduler import service as scheduler

    settings = Settings(
        kafka_bootstrap=kafka,
        topic_prefix=f"bench-tick-{uuid.uuid4().hex[:8]}",
        partitions=2,
        work_partitions=2,
    )
    await ensure_topics(settings, queues=["default"])
    src = dag_source("bench_tick", '"@daily"', year=2030)
    await publish(settings, [version(parse_one(src), src)])
    clock = FakeClock(MIDNIGHT - timedelta(seconds=1))
    ready: list[Any] = []
    watch = StartedWatch(settings)
    tasks: list[asyncio.Task[Any]] = [
        asyncio.ensure_future(watch.follow()),
        asyncio.ensure_future(executor.run(settings, shutdown_grace=2.0, version_timeout=5.0)),
        asyncio.ensure_future(scheduler.run(settings, clock=clock, on_ready=ready.append)),
    ]
    out: dict[str, list[float]] = {"start_date": [], "seen": [], "unwoken": []}
    try:
        # catchup=False: at 23:59:59 the latest interval is the previous midnight's; its
        # attempt also warms the executor up.
        await watch.wait(f"scheduled__{(MIDNIGHT - timedelta(days=1)).isoformat()}", 120)
        for i in range(repeat + unwoken):
            await asyncio.sleep(0.3)  # the previous attempt ends; the system is idle
            midnight = MIDNIGHT + timedelta(days=i)
            moved = time.time()
            clock.now = midnight
            if i < repeat:
                ready[0].wakeup.set()
            seen, start = await watch.wait(f"scheduled__{midnight.isoformat()}", 30)
            if i < repeat:
                out["start_date"].append((start.timestamp() - moved) * 1000)
                out["seen"].append((seen - moved) * 1000)
            else:
                out["unwoken"].append((start.timestamp() - moved) * 1000)
    finally:
        await _stop(tasks)
    return out


def _proc_sample(pid: int) -> tuple[int, int]:
    """(utime + stime in clock ticks, VmRSS in kB) of ``pid``."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    return ticks, rss


async def prepare_load(settings: Settings, n_daily: int, n_fast: int) -> None:
    """Part 2's topics and its ``n_daily + n_fast`` DAG versions."""
    await ensure_topics(settings, queues=["default"])
    year = datetime.now(UTC).year - 1
    daily_src = dag_source("TEMPLATE", '"@daily"', year=year)
    fast_src = dag_source("TEMPLATE", "timedelta(seconds=1)", year=year, max_active_runs=100_000)
    daily, fast = parse_one(daily_src), parse_one(fast_src)
    versions = []
    for prefix, n, dag, src in (
        ("daily", n_daily, daily, daily_src),
        ("fast", n_fast, fast, fast_src),
    ):
        for i in range(n):
            dag_id = f"{prefix}_{i:04d}"
            versions.append(
                version(dag.model_copy(update={"dag_id": dag_id}), src.replace("TEMPLATE", dag_id))
            )
    await publish(settings, versions)


def load(kafka: str, n_daily: int, n_fast: int, seconds: float, warmup: float) -> dict[str, Any]:
    """Part 2; returns the numbers for the table."""
    settings = Settings(
        kafka_bootstrap=kafka,
        topic_prefix=f"bench-load-{uuid.uuid4().hex[:8]}",
        partitions=3,
        work_partitions=3,
    )
    asyncio.run(prepare_load(settings, n_daily, n_fast))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERFLOW_")}
    env.update(
        LEDGERFLOW_KAFKA_BOOTSTRAP=kafka,
        LEDGERFLOW_TOPIC_PREFIX=settings.topic_prefix,
        LEDGERFLOW_PARTITIONS="3",
        LEDGERFLOW_WORK_PARTITIONS="3",
        PYTHONUNBUFFERED="1",
    )
    logfile = Path(tempfile.mkdtemp(prefix="ledgerflow-bench-sched-")) / "scheduler.log"
    tick = os.sysconf("SC_CLK_TCK")
    samples: list[tuple[float, float, int, int]] = []  # (monotonic, wall, ticks, rss kB)
    with open(logfile, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ledgerflow.cli", "scheduler"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        began = time.monotonic()
        try:
            while time.monotonic() - began < seconds:
                if proc.poll() is not None:
                    raise RuntimeError(f"the scheduler exited ({proc.returncode}); see {logfile}")
                ticks, rss = _proc_sample(proc.pid)
                samples.append((time.monotonic(), time.time(), ticks, rss))
                time.sleep(1.0)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    steady = [s for s in samples if s[0] - began >= warmup]
    first, last = steady[0], steady[-1]
    window = last[0] - first[0]
    cpu = (last[2] - first[2]) / tick / window * 100
    startup_cpu = (first[2] - samples[0][2]) / tick
    t0 = datetime.fromtimestamp(first[1], UTC)
    t1 = datetime.fromtimestamp(last[1], UTC)
    # Per 1-second DAG, the run_after of its scheduled runs due in the window (the time
    # the run was due; with catchup=False it follows the clock of the decision), and how
    # long after it the run's record was sent (the record's timestamp).
    due_at: dict[str, list[float]] = {}
    sent_after: list[float] = []
    fast_events = 0
    daily_runs: set[tuple[str, str]] = set()
    for sent, e in asyncio.run(read_all(settings, settings.topics.runs)):
        d = e.data
        if not isinstance(d, DagRunQueued) or d.run_type != "scheduled":
            continue
        if d.dag_id.startswith("daily_"):
            daily_runs.add((d.dag_id, d.run_id))
        elif d.run_after is not None and t0 <= d.run_after < t1:
            fast_events += 1
            due_at.setdefault(d.dag_id, []).append(d.run_after.timestamp())
            sent_after.append((sent - d.run_after.timestamp()) * 1000)
    created = sum(len(set(v)) for v in due_at.values())
    gaps = [
        (b - a) * 1000
        for v in due_at.values()
        for a, b in zip(sorted(set(v)), sorted(set(v))[1:], strict=False)
    ] or [0.0]
    sent_after = sent_after or [0.0]
    return {
        "window": window,
        "rss_start": first[3] / 1024,
        "rss_end": last[3] / 1024,
        "rss_max": max(s[3] for s in samples) / 1024,
        "cpu": cpu,
        "startup_cpu": startup_cpu,
        "created": created,
        "duplicates": fast_events - created,
        "expected": n_fast * window,
        "gap": (pct(gaps, 50), pct(gaps, 95), max(gaps)),
        "sent": (pct(sent_after, 50), pct(sent_after, 95), max(sent_after)),
        "daily_runs": len(daily_runs),
        "log": str(logfile),
    }


def core(repeat: int, n_daily: int, n_fast: int, seconds: int) -> tuple[list[float], float, int]:
    from tests.bench import schedule

    lat = schedule.tick_to_first_task(repeat)
    runs, _decisions, cpu = schedule.load(n_daily, n_fast, seconds, trace=False)
    return lat, cpu / seconds * 1000, runs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=20, help="woken due ticks in part 1")
    ap.add_argument("--unwoken", type=int, default=5, help="due ticks with no wakeup")
    ap.add_argument("--daily", type=int, default=1000)
    ap.add_argument("--fast", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=60.0, help="scheduler process lifetime")
    ap.add_argument("--warmup", type=float, default=15.0, help="seconds left out of steady")
    args = ap.parse_args(argv)
    kafka = os.environ[KAFKA_ENV]
    began = time.monotonic()
    load_before = load_avg()

    lat = asyncio.run(tick_to_task(kafka, args.repeat, args.unwoken))
    load_mid = load_avg()
    print()
    print(
        f"Due @daily tick (fake clock moved past midnight) -> first task running: in-process "
        f"scheduler and executor on real Kafka, {args.repeat} days (+{args.unwoken} "
        f"without the wakeup); load average before {load_before}"
    )
    print()
    print("| measurement (ms) | n | p50 | p95 | max |")
    print("|---|---:|---:|---:|---:|")
    rows = (
        ("clock moved + wakeup -> executor start_date", lat["start_date"]),
        ("clock moved + wakeup -> TaskAttemptStarted seen on run log", lat["seen"]),
        ("clock moved, no wakeup (loop wait <= 1 s) -> start_date", lat["unwoken"]),
    )
    for name, values in rows:
        if values:
            print(
                f"| {name} | {len(values)} | {pct(values, 50):.1f} | {pct(values, 95):.1f} "
                f"| {max(values):.1f} |"
            )

    r = load(kafka, args.daily, args.fast, args.seconds, args.warmup)
    print()
    print(
        f"Scheduler process (`python -m ledgerflow.cli scheduler`, 3 partitions, no executor) "
        f"with {args.daily} @daily + {args.fast} 1-second DAGs (one no-op task each), "
        f"{args.seconds:.0f} s, steady window {r['window']:.0f} s after {args.warmup:.0f} s; "
        f"load average before {load_mid}, after {load_avg()}"
    )
    print()
    print("| metric | value |")
    print("|---|---:|")
    print(
        f"| RSS at window start / end / max (MB) | {r['rss_start']:.0f} / {r['rss_end']:.0f} "
        f"/ {r['rss_max']:.0f} |"
    )
    print(f"| CPU in the steady window (% of one core) | {r['cpu']:.1f} |")
    print(
        f"| CPU during start-up (first {args.warmup:.0f} s, CPU seconds) | {r['startup_cpu']:.1f} |"
    )
    print(
        f"| 1-second runs due in the window: created / expected (100 DAGs x window s) | "
        f"{r['created']} / {r['expected']:.0f} ({r['created'] / r['expected']:.2f}); "
        f"duplicates {r['duplicates']} |"
    )
    rows2 = (
        ("1-second DAG: gap between consecutive runs' run_after (ms; ideal 1000)", r["gap"]),
        ("1-second runs: run_after -> DagRunQueued record sent (ms)", r["sent"]),
    )
    for name, (p50, p95, worst) in rows2:
        print(f"| {name}, p50 / p95 / max | {p50:.1f} / {p95:.1f} / {worst:.1f} |")
    print(f"| @daily runs created (catchup=False: 1 per DAG expected) | {r['daily_runs']} |")
    print(f"\n(scheduler log: {r['log']})")

    core_lat, ms_per_s, runs = core(200, args.daily, args.fast, 30)
    print()
    print("Core only (`tests/bench/schedule.py`, pure `decide`, no I/O):")
    print()
    print("| metric | value |")
    print("|---|---:|")
    print(
        f"| due tick -> first work item, p50 / p95 (us) | {pct(core_lat, 50):.0f} / "
        f"{pct(core_lat, 95):.0f} |"
    )
    print(
        f"| {args.daily} @daily + {args.fast} 1-second DAGs: CPU per simulated second (ms) | "
        f"{ms_per_s:.1f} ({runs} runs in 30 s) |"
    )
    print()
    print(f"(schedule part took {time.monotonic() - began:.0f} s; load average now {load_avg()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
