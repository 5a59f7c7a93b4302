"""Projector throughput and lag: can the projection keep up with a busy run log?

A producer writes a realistic mix at a fixed rate (default 5,000 events/s for 20 s) to
fresh topics: runs of a 10-task DAG, each task queued, started, logging a chunk or two
and succeeding (one in twelve fails once and is retried), with the runs' own facts and
the trigger commands. A projector (``ledgerflow.api.projector``, in its own process, as
in production) projects them into a fresh database. A poller reads
``projector_offsets`` every few milliseconds: an event's lag is the time from its
envelope time (set by the producer just before sending) to the first poll that sees its
offset stored, i.e. its rows committed and visible to readers.

    uv run --frozen python -m tests.bench.projector [--rate 5000] [--seconds 20] [--runs 2]

Every run has a fresh projector, database and topics. The runs go one after the other, so
the first also meets the broker as it came: under ``make bench`` (the projector part
alone) a Kafka started seconds before, whose JIT compiler still takes CPU from
everything on a 2-core machine, as in no running system; the later runs meet it warm.

Needs ``LEDGERFLOW_KAFKA_BOOTSTRAP`` and ``LEDGERFLOW_DATABASE_URL`` (``make bench``
provides both). ``BENCH_PROJECTOR_CMD`` replaces the projector's command line, e.g. to
profile it: ``BENCH_PROJECTOR_CMD="py-spy record -o proj.svg -- python -m
tests.bench.projector --project"``.

"projected" is the sustained rate: events made visible per second from the first send
to the last event's visibility (below the offered rate when the projection falls behind).
"offered" is what the producer sent per second: the events (ids, headers, JSON) are built
and the producer connected before its clock starts, and each few-ms tick's events go out
as one record batch per partition, so it keeps the rate on a 2-core machine shared with
Kafka, Postgres and the projector; "producer + poller CPU" is this process's CPU over the
same window (the load generator's share of the machine).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import resource
import signal
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import DefaultPartitioner
from ledgerflow.common import events as ev
from ledgerflow.common.dagmodel import SerializedDag, SerializedTask
from ledgerflow.common.kafka_io import EventProducer, ensure_topics, kafka_client_kwargs
from ledgerflow.common.settings import Settings
from ledgerflow.common.topics import attempt_key
from pydantic import BaseModel

DAG_ID = "bench_projection"
TASKS = 10
POLL_INTERVAL_S = 0.004


def bench_dag() -> SerializedDag:
    return SerializedDag(
        dag_id=DAG_ID,
        fileloc=f"/dags/{DAG_ID}.py",
        tasks=tuple(
            SerializedTask(
                task_id=f"t{i}",
                operator="PythonOperator",
                retries=1,
                upstream_task_ids=(f"t{i - 1}",) if i else (),
            )
            for i in range(TASKS)
        ),
    )


Item = tuple[str, BaseModel, str, str | None, int]
"""(topic kind, payload, Kafka key, correlation id, sequence)"""


def workload(seed: int = 7) -> Iterator[Item]:
    """An endless, interleaved stream of realistic events: many runs in flight at once."""
    rng = random.Random(seed)
    in_flight: list[Iterator[Item]] = []
    run_no = 0
    while True:
        while len(in_flight) < 40:
            run_no += 1
            in_flight.append(_run_story(rng, run_no))
        story = rng.choice(in_flight)
        item = next(story, None)
        if item is None:
            in_flight.remove(story)
            continue
        yield item


def _run_story(rng: random.Random, n: int) -> Iterator[Item]:
    run_id = f"scheduled__bench_{n:07d}"
    now = datetime.now(UTC)
    seq = 0

    def fact(payload: BaseModel) -> Item:
        nonlocal seq
        seq += 1
        return ("runs", payload, DAG_ID, run_id, seq)

    yield ("commands", ev.TriggerDagRun(dag_id=DAG_ID, run_id=run_id), DAG_ID, run_id, 0)
    ref = {"dag_id": DAG_ID, "run_id": run_id}
    yield fact(ev.DagRunQueued(**ref, version_id="v1", queued_at=now))
    yield fact(ev.DagRunStarted(**ref, start_date=now))
    for i in range(TASKS):
        task = {**ref, "task_id": f"t{i}"}
        tries = 2 if rng.random() < 1 / 12 else 1
        for try_number in range(1, tries + 1):
            at = now + timedelta(seconds=i)
            yield fact(
                ev.TaskInstanceQueued(
                    **task, try_number=try_number, queue="default", queued_when=at
                )
            )
            yield (
                "runs",
                ev.TaskAttemptStarted(
                    **task, try_number=try_number, start_date=at, hostname="h", executor_id="e"
                ),
                DAG_ID,
                run_id,
                1,
            )
            key = attempt_key(DAG_ID, run_id, task["task_id"], -1, try_number)
            for chunk in range(rng.choice((1, 1, 2))):
                lines = tuple(
                    ev.LogLine(ts=at, stream="stdout", text=f"line {j} of chunk {chunk}")
                    for j in range(rng.randint(1, 8))
                )
                yield (
                    "logs",
                    ev.TaskLogChunk(**task, try_number=try_number, chunk=chunk, lines=lines),
                    key,
                    run_id,
                    chunk,
                )
            if try_number < tries:
                yield (
                    "runs",
                    ev.TaskAttemptFailed(
                        **task, try_number=try_number, end_date=at, error="boom", executor_id="e"
                    ),
                    DAG_ID,
                    run_id,
                    2,
                )
                yield fact(ev.TaskInstanceUpForRetry(**task, try_number=try_number, retry_at=at))
            else:
                yield (
                    "runs",
                    ev.TaskAttemptSucceeded(
                        **task,
                        try_number=try_number,
                        end_date=at,
                        executor_id="e",
                        return_value={"rows": i},
                        rendered_fields={"op_args": "[]"},
                    ),
                    DAG_ID,
                    run_id,
                    2,
                )
    yield fact(ev.DagRunSucceeded(**ref, end_date=now))


@dataclass
class Tracker:
    """Send times by (topic, partition, offset); lags once the projection shows them."""

    pending: dict[tuple[str, int], list[tuple[int, float]]] = field(default_factory=dict)
    lags_ms: list[float] = field(default_factory=list)
    last_visible: float = 0.0

    def sent(self, topic: str, partition: int, offset: int, at: float) -> None:
        self.pending.setdefault((topic, partition), []).append((offset, at))

    def visible(self, topic: str, partition: int, next_offset: int, now: float) -> None:
        waiting = self.pending.get((topic, partition))
        if not waiting:
            return
        k = 0
        while k < len(waiting) and waiting[k][0] < next_offset:
            self.lags_ms.append((now - waiting[k][1]) * 1000)
            k += 1
        if k:
            del waiting[:k]
            self.last_visible = now

    @property
    def outstanding(self) -> int:
        return sum(len(v) for v in self.pending.values())


@dataclass(frozen=True, slots=True)
class Prepared:
    """One event ready to send: its envelope JSON is ``head + time + tail``."""

    kind: str
    key: bytes
    head: bytes
    tail: bytes
    headers: list[tuple[str, bytes]]


def _prepared(total: int) -> list[Prepared]:
    """The workload's first ``total`` events, built before the clock starts (ids and
    headers too) so that producing one is a concatenation: only the time is set when
    it is sent."""
    out = []
    stream = workload()
    content_type = ev.CONTENT_TYPE.encode()
    for _ in range(total):
        kind, payload, key, correlation, seq = next(stream)
        data = payload.model_dump_json(by_alias=True, exclude_none=True)
        event_id = str(uuid.uuid4())
        ce_type = f"{ev.CLOUDEVENTS_TYPE_PREFIX}{payload.type}"
        tail = (
            f'","source":"bench/projector","type":"{ce_type}",'
            f'"subject":{json.dumps(key)},"datacontenttype":"application/json",'
            f'"schemaversion":{ev.SCHEMA_VERSION},"aggregatekey":{json.dumps(key)},'
            f'"sequence":{seq},"correlationid":{json.dumps(correlation)},"data":{data}}}'
        )
        headers = [
            ("traceparent", f"00-{uuid.uuid4().hex}-{event_id[-16:]}-01".encode()),
            ("content-type", content_type),
            ("ce_type", ce_type.encode()),
            ("ce_id", event_id.encode()),
        ]
        head = f'{{"specversion":"1.0","id":"{event_id}","time":"'
        out.append(Prepared(kind, key.encode(), head.encode(), tail.encode(), headers))
    return out


async def produce(
    settings: Settings,
    rate: int,
    seconds: float,
    tracker: Tracker,
    on_start: Callable[[], None] = lambda: None,
) -> tuple[int, float]:
    """Send ``rate`` events/s for ``seconds`` (paced every few ms); returns how many and
    for how long (from the first send to the last one handed to the client).

    The events are built and the producer connected before ``on_start`` is called and
    the paced sending starts: the clock of the offered rate starts there.

    Envelopes are the CloudEvents JSON ``EventProducer`` writes, assembled from prepared
    parts (:func:`_prepared`) and the time, and sent with its headers to the partition
    its key hashes to. The producer must not be what limits the rate on a 2-core
    machine, so each tick's messages go out as one record batch per partition
    (aiokafka's ``send_batch``: what ``send`` builds for a tick's burst anyway, without
    a future per message)."""
    total = int(rate * seconds)
    prepared = _prepared(total)
    sent = 0
    acks: list[asyncio.Future[Any]] = []

    def record(fut: asyncio.Future[Any], sends: list[tuple[int, float]]) -> None:
        meta = fut.result()
        for relative, at in sends:
            tracker.sent(meta.topic, meta.partition, meta.offset + relative, at)

    async with EventProducer(settings, source="bench/projector") as producer:
        await producer.send(
            settings.topics.dags,
            ev.make_envelope(
                ev.DagVersionPublished(
                    dag_id=DAG_ID,
                    version_id="v1",
                    dag=bench_dag(),
                    source_code="# bench",
                    filename=f"{DAG_ID}.py",
                ),
                id=ev.deterministic_id("DagVersionPublished", "v1"),
                source="bench/projector",
                time=datetime.now(UTC),
                aggregate_key=DAG_ID,
            ),
        )
        raw = producer.raw
        topics = {kind: getattr(settings.topics, kind) for kind in ("runs", "logs", "commands")}
        partitions = {
            kind: sorted(await raw.partitions_for(topic)) for kind, topic in topics.items()
        }
        partitioner = DefaultPartitioner()
        targets = [
            (topics[p.kind], partitioner(p.key, partitions[p.kind], partitions[p.kind]))
            for p in prepared
        ]
        # The prepared events are many objects that live to the end: out of the
        # collector's sight, so that no full collection pauses producing or polling.
        gc.collect()
        gc.freeze()
        on_start()
        start = time.monotonic()
        sending_s = 0.0
        while sent < total:
            due = min(total, int((time.monotonic() - start) * rate) + 1)
            batches: dict[tuple[str, int], tuple[Any, list[tuple[int, float]]]] = {}
            # The tick's events go out together, as one record batch per partition:
            # their envelope time is set now, just before they are sent.
            now_wall = time.time()
            at = datetime.fromtimestamp(now_wall, UTC).isoformat().encode()
            timestamp_ms = int(now_wall * 1000)
            while sent < due:
                p = prepared[sent]
                target = targets[sent]
                batch, sends = batches.get(target) or (raw.create_batch(), [])
                meta = batch.append(
                    timestamp=timestamp_ms, key=p.key, value=p.head + at + p.tail, headers=p.headers
                )
                if meta is None:  # full: send it and start the next one
                    del batches[target]
                    acks.append(await _send_batch(raw, batch, target, sends, record))
                    continue  # the same event again, into a fresh batch
                sends.append((meta.offset, now_wall))
                batches[target] = (batch, sends)
                sent += 1
            for target, (batch, sends) in batches.items():
                acks.append(await _send_batch(raw, batch, target, sends, record))
            acks = [f for f in acks if not f.done()]
            sending_s = time.monotonic() - start
            if sent < total:
                await asyncio.sleep(0.004)
        await asyncio.gather(*acks)
    return sent, sending_s


async def _send_batch(
    raw: Any, batch: Any, target: tuple[str, int], sends: list[tuple[int, float]], record: Any
) -> asyncio.Future[Any]:
    fut: asyncio.Future[Any] = await raw.send_batch(batch, target[0], partition=target[1])
    fut.add_done_callback(lambda f: record(f, sends))
    return fut


async def poll(settings: Settings, tracker: Tracker, stop: asyncio.Event) -> None:
    conn = await asyncpg.connect(
        settings.database_url, server_settings={"search_path": "projection"}
    )
    try:
        while not stop.is_set():
            with contextlib.suppress(asyncpg.UndefinedTableError):
                rows = await conn.fetch(
                    "SELECT topic, kafka_partition, next_offset FROM projector_offsets"
                )
                now = time.time()
                for r in rows:
                    tracker.visible(r["topic"], r["kafka_partition"], r["next_offset"], now)
            await asyncio.sleep(POLL_INTERVAL_S)
    finally:
        await conn.close()


async def _delete_topics(settings: Settings) -> None:
    """Delete the run's topics: left behind, a few hundred benchmark runs' topics slow the
    shared broker (and every later run) down."""
    kafka = AIOKafkaAdminClient(**kafka_client_kwargs(settings))
    await kafka.start()
    try:
        mine = [t for t in await kafka.list_topics() if t.startswith(settings.topic_prefix + ".")]
        if mine:
            await kafka.delete_topics(mine)
    finally:
        await kafka.close()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))]


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cpu_seconds(pid: int) -> float:
    with contextlib.suppress(OSError):
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


async def bench(rate: int, seconds: float) -> dict[str, Any]:
    base_db = os.environ["LEDGERFLOW_DATABASE_URL"]
    name = f"bench_projector_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(base_db)
    await admin.execute(f'CREATE DATABASE "{name}"')
    settings = Settings(
        kafka_bootstrap=os.environ["LEDGERFLOW_KAFKA_BOOTSTRAP"],
        database_url=base_db.rsplit("/", 1)[0] + "/" + name,
        topic_prefix=f"bench-proj-{uuid.uuid4().hex[:8]}",
    )
    await ensure_topics(settings)
    env = {
        **os.environ,
        "LEDGERFLOW_DATABASE_URL": settings.database_url,
        "LEDGERFLOW_TOPIC_PREFIX": settings.topic_prefix,
    }
    projector = await asyncio.create_subprocess_exec(
        *(
            os.environ.get("BENCH_PROJECTOR_CMD", "").split()
            or [sys.executable, "-m", "tests.bench.projector", "--project"]
        ),
        env=env,
    )
    tracker = Tracker()
    stop = asyncio.Event()
    try:
        poller = asyncio.create_task(poll(settings, tracker, stop))
        await asyncio.sleep(3)  # projector up, schema migrated
        clock: dict[str, float] = {}

        def started() -> None:
            clock.update(
                cpu0=_cpu_seconds(projector.pid),
                own0=_own_cpu_seconds(),
                t0=time.monotonic(),
                wall0=time.time(),
            )

        sent, sending_s = await produce(settings, rate, seconds, tracker, started)
        cpu0, t0, wall0 = clock["cpu0"], clock["t0"], clock["wall0"]
        produced_s = time.monotonic() - t0  # the sending and the acks of the last sends
        deadline = time.monotonic() + 60
        while tracker.outstanding and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        cpu = _cpu_seconds(projector.pid) - cpu0
        own = _own_cpu_seconds() - clock["own0"]
        stop.set()
        await poller
    finally:
        projector.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(projector.wait(), 10)
        except TimeoutError:
            projector.kill()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
        await _delete_topics(settings)
    lags = tracker.lags_ms
    return {
        "sent": sent,
        "produced_rate": sent / max(sending_s, 1e-9),
        "projected": len(lags),
        "projected_rate": len(lags) / max(produced_s, tracker.last_visible - wall0),
        "cpu_per_s": cpu / produced_s,
        "bench_cpu_per_s": own / produced_s,
        "p50": pct(lags, 50),
        "p95": pct(lags, 95),
        "p99": pct(lags, 99),
        "max": max(lags),
        "outstanding": tracker.outstanding,
    }


def cpu_probe_ms() -> float:
    """Best of three runs of a fixed pure-Python loop: how fast this machine's CPU is just
    now. The development VM's speed drifts (on 2026-11-24 a 5,000,000-iteration loop took
    540 ms, and ten minutes later 764 ms, nothing else running), and the lag with it."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i * i
        best = min(best, time.perf_counter() - start)
    return best * 1000


def print_table(
    rate: int, seconds: float, runs: list[tuple[str, dict[str, Any]]], probe_ms: float
) -> None:
    first = runs[0][1]
    print()
    print(
        f"Projector: {first['sent']} run-log + log-chunk events offered at {rate}/s for"
        f" {seconds:.0f} s, per run (lag = envelope time -> offset stored, i.e. rows visible)"
    )
    print()
    print(
        "| run | offered (ev/s) | projected (ev/s) | lag p50 (ms) | p95 (ms) | p99 (ms) "
        "| max (ms) | projector CPU (cores) | producer + poller CPU (cores) | not projected |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in runs:
        print(
            f"| {name} | {r['produced_rate']:.0f} | {r['projected_rate']:.0f} | {r['p50']:.1f} | "
            f"{r['p95']:.1f} | {r['p99']:.1f} | {r['max']:.1f} | {r['cpu_per_s']:.2f} | "
            f"{r['bench_cpu_per_s']:.2f} | {r['outstanding']} |"
        )
    print()
    print(
        f"CPU probe before the runs: a 1,000,000-iteration Python loop took {probe_ms:.0f} ms"
        " (best of 3; compare runs only at similar values)"
    )


async def _project() -> None:
    from ledgerflow.api import projector

    await projector.run(Settings())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=int, default=5000)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument(
        "--runs",
        type=int,
        default=2,
        help="runs one after the other, each with a fresh projector, database and topics;"
        " the first also meets a broker (and Postgres) that may have just started",
    )
    ap.add_argument("--project", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error(f"--runs must be at least 1, not {args.runs}")
    if args.project:  # the projector process
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_project())
        return 0
    probe_ms = cpu_probe_ms()
    runs = []
    for n in range(args.runs):
        name = "1 (the broker as it came)" if n == 0 else str(n + 1)
        runs.append((name, asyncio.run(bench(args.rate, args.seconds))))
    print_table(args.rate, args.seconds, runs, probe_ms)
    return 0


if __name__ == "__main__":
    sys.exit(main())
