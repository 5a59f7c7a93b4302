# ruff: noqa: F811  (pytest fixtures imported from live_api are parameters here)
"""``projector --rebuild`` gives the same database, row for row, after a busy history.

A realistic workload (many runs of three DAGs; retries, reschedules, mapped tasks,
skips and upstream failures, XComs, log chunks, clears and marks, pause changes,
variables, connections, pools; every tenth event delivered twice) is published while
a live projector runs, so the original is built from many small, interleaved batches.
Then:

1. a reference schema is built event by event with the per-event path
   (``projection.apply_event``), and its tables must equal the batched projection's:
   batching (and the dispatch function) changes round trips, not rows; every statement
   the plans emitted is registered with the dispatch function;
2. ``rebuild_projection`` replays the log into a new schema while the live projector
   keeps serving, then swaps; every table of the rebuilt schema must equal the original.

Tables are compared by a checksum per table over a canonical ordering (the rows' text,
sorted), with these columns left out because they legitimately belong to one
projection run rather than to the log:

- ``schema_migrations.applied_at``: when the migration ran in that schema (wall clock);
- ``projector_offsets.updated_at``: when the offset was written (wall clock);
- ``projector_status``: ``started_at``/``updated_at`` (wall clock), ``last_batch_size``
  and ``last_event_time`` (the size and last event of the last batch: batch boundaries
  depend on timing); ``events_applied`` and ``dead_lettered`` are compared;
- ``events.event_log_id``: numbers events in the order they were projected
  (migration 0005 says so); a rebuild may interleave partitions differently.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer
from ledgerflow.api import db, projector
from ledgerflow.api.projection import apply_event, handler_for
from ledgerflow.api.projection_base import unregistered_statements
from ledgerflow.api.topology import partitions_of
from ledgerflow.common import events as ev
from ledgerflow.common.dagmodel import SerializedDag, SerializedTask
from ledgerflow.common.kafka_io import (
    EventProducer,
    consumer_config,
    kafka_client_kwargs,
    traceparent_of,
)
from ledgerflow.common.settings import Settings
from ledgerflow.common.topics import attempt_key

from tests.integration.live_api import background, settings  # noqa: F401

pytestmark = pytest.mark.integration

EXCLUDED: dict[str, set[str]] = {
    "schema_migrations": {"applied_at"},
    "projector_offsets": {"updated_at"},
    "projector_status": {"started_at", "updated_at", "last_batch_size", "last_event_time"},
    "events": {"event_log_id"},
}
PROJECTOR_TABLES = {"projector_offsets", "projector_status", "schema_migrations"}
T0 = datetime(2026, 11, 24, tzinfo=UTC)
RUNS = 60

Item = tuple[str, Any, str, str | None]  # (topic kind, payload, key, correlation id)


def dags() -> list[SerializedDag]:
    def task(task_id: str, *up: str, retries: int = 0, op: str = "PythonOperator") -> Any:
        return SerializedTask(task_id=task_id, operator=op, upstream_task_ids=up, retries=retries)

    return [
        SerializedDag(
            dag_id=f"etl_{n}",
            fileloc=f"/dags/etl_{n}.py",
            tags=("etl",),
            tasks=(
                task("extract", retries=2),
                task("fan", "extract", op="BashOperator"),  # mapped
                task("load", "fan", retries=1),
                task("notify", "load", op="EmptyOperator"),
            ),
        )
        for n in range(3)
    ]


def workload(seed: int = 11) -> list[Item]:
    rng = random.Random(seed)
    clock = [T0]

    def at() -> datetime:
        clock[0] += timedelta(milliseconds=rng.randint(1, 400))
        return clock[0]

    items: list[Item] = []
    for dag in dags():
        items.append(
            (
                "dags",
                ev.DagVersionPublished(
                    dag_id=dag.dag_id,
                    version_id=f"{dag.dag_id}-v1",
                    dag=dag,
                    source_code="# generated",
                    filename=f"{dag.dag_id}.py",
                ),
                dag.dag_id,
                None,
            )
        )
    stories = [_run(rng, dags()[i % 3].dag_id, i, at) for i in range(RUNS)]
    config = _config(rng, at)
    while stories:
        story = rng.choice(stories)
        item = next(story, None)
        if item is None:
            stories.remove(story)
            continue
        items.append(item)
        if rng.random() < 0.03:
            items.append(next(config))
    return items


def _config(rng: random.Random, at: Any) -> Any:
    n = 0
    while True:
        n += 1
        key = f"k{rng.randint(0, 6)}"
        choice = rng.random()
        if choice < 0.4:
            yield (
                "config",
                ev.VariableSet(key=key, value=f"cipher-{n}", set_by="ann"),
                f"variable:{key}",
                None,
            )
        elif choice < 0.55:
            yield ("config", ev.VariableDeleted(key=key), f"variable:{key}", None)
        elif choice < 0.8:
            yield (
                "config",
                ev.ConnectionSet(conn_id=key, conn_type="postgres", host=f"h{n}", port=5432),
                f"connection:{key}",
                None,
            )
        elif choice < 0.9:
            yield (
                "config",
                ev.PoolSet(name=f"p{key}", slots=n % 7, set_by="bob"),
                f"pool:p{key}",
                None,
            )
        else:
            yield ("commands", ev.SetDagPaused(dag_id="etl_0", is_paused=n % 2 == 0), "etl_0", None)
            yield ("runs", ev.DagPauseChanged(dag_id="etl_0", is_paused=n % 2 == 0), "etl_0", None)


def _run(rng: random.Random, dag_id: str, n: int, at: Any) -> Any:
    run_id = f"scheduled__{n:04d}"
    ref = {"dag_id": dag_id, "run_id": run_id}

    def fact(payload: Any) -> Item:
        return ("runs", payload, dag_id, run_id)

    yield ("commands", ev.TriggerDagRun(**ref, triggered_by="ann"), dag_id, run_id)
    yield fact(ev.DagRunQueued(**ref, version_id=f"{dag_id}-v1", queued_at=at(), conf={"n": n}))
    yield fact(ev.DagRunStarted(**ref, start_date=at()))

    def attempts(task_id: str, map_index: int = -1, *, max_tries: int = 1) -> Any:
        t = {**ref, "task_id": task_id, "map_index": map_index}
        for try_number in range(1, max_tries + 1):
            yield fact(
                ev.TaskInstanceQueued(**t, try_number=try_number, queue="default", queued_when=at())
            )
            yield fact(
                ev.TaskAttemptStarted(
                    **t,
                    try_number=try_number,
                    start_date=at(),
                    hostname="h",
                    executor_id="e",
                    pid=n,
                )
            )
            key = attempt_key(dag_id, run_id, task_id, map_index, try_number)
            for chunk in range(rng.randint(0, 2)):
                line = ev.LogLine(ts=at(), stream="stdout", text=f"{task_id} {chunk}")
                yield (
                    "logs",
                    ev.TaskLogChunk(**t, try_number=try_number, chunk=chunk, lines=(line,)),
                    key,
                    run_id,
                )
            last = try_number == max_tries
            if last and rng.random() < 0.8:
                yield fact(
                    ev.TaskAttemptSucceeded(
                        **t,
                        try_number=try_number,
                        end_date=at(),
                        executor_id="e",
                        return_value=[1, 2, 3] if task_id == "extract" else {"ok": n},
                        xcoms={"extra": n},
                        rendered_fields={"cmd": f"run {n}"},
                    )
                )
                return True
            if rng.random() < 0.2 and not last:
                yield fact(
                    ev.TaskAttemptRescheduled(
                        **t,
                        try_number=try_number,
                        end_date=at(),
                        reschedule_date=at(),
                        executor_id="e",
                    )
                )
                continue
            yield fact(
                ev.TaskAttemptFailed(
                    **t,
                    try_number=try_number,
                    end_date=at(),
                    error="boom",
                    executor_id="e",
                    rendered_fields={"cmd": "x"},
                )
            )
            if last:
                yield fact(ev.TaskInstanceFailed(**t, try_number=try_number, end_date=at()))
                return False
            yield fact(ev.TaskInstanceUpForRetry(**t, try_number=try_number, retry_at=at()))
        return False

    ok = yield from attempts("extract", max_tries=rng.randint(1, 3))
    if ok:
        width = rng.randint(0, 3)
        yield fact(ev.TaskInstanceMapExpanded(**ref, task_id="fan", length=width, at=at()))
        if width == 0:
            yield fact(
                ev.TaskInstanceSkipped(**ref, task_id="fan", at=at(), reason="nothing to map")
            )
        for i in range(width):
            yield from attempts("fan", i)
        ok = yield from attempts("load", max_tries=2)
    else:
        for task_id in ("fan", "load"):
            yield fact(ev.TaskInstanceUpstreamFailed(**ref, task_id=task_id, at=at()))
    if ok:
        yield fact(ev.TaskInstanceSkipped(**ref, task_id="notify", at=at()))
    else:
        yield fact(ev.TaskInstanceUpstreamFailed(**ref, task_id="notify", at=at()))
    if rng.random() < 0.3:  # a user clears `load`, marks it success, and the run too
        yield fact(
            ev.TaskInstanceCleared(**ref, task_id="load", try_number=2, at=at(), cleared_by="ann")
        )
        yield fact(
            ev.TaskInstanceStateSet(
                **ref, task_id="load", try_number=2, state="success", at=at(), set_by="ann"
            )
        )
        yield fact(ev.DagRunStateSet(**ref, state="success", at=at(), set_by="ann"))
    yield fact((ev.DagRunSucceeded if ok else ev.DagRunFailed)(**ref, end_date=at()))


def envelopes(items: list[Item]) -> list[tuple[str, ev.Envelope]]:
    out = []
    for i, (kind, payload, key, correlation) in enumerate(items):
        source = "ledgerflow/scheduler" if kind == "runs" else "tests/rebuild"
        out.append(
            (
                kind,
                ev.make_envelope(
                    payload,
                    id=ev.deterministic_id("rebuild-test", i),
                    source=source,
                    time=T0 + timedelta(seconds=i),
                    aggregate_key=key,
                    sequence=i,
                    correlation_id=correlation,
                ),
            )
        )
    return out


async def checksums(conn: asyncpg.Connection, schema: str) -> dict[str, tuple[int, str]]:
    """``{table: (rows, md5)}`` over each table's rows as text, sorted, minus EXCLUDED."""
    tables = [
        r[0]
        for r in await conn.fetch(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = $1 AND table_type = 'BASE TABLE' ORDER BY 1",
            schema,
        )
    ]
    out = {}
    for table in tables:
        columns = [
            r[0]
            for r in await conn.fetch(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
                schema,
                table,
            )
            if r[0] not in EXCLUDED.get(table, set())
        ]
        cols = ", ".join(db.quote_ident(c) for c in columns)
        row = await conn.fetchrow(
            f"SELECT count(*) AS n, md5(coalesce(string_agg(r, E'\\n' ORDER BY r), '')) AS sum"
            f" FROM (SELECT ROW({cols})::text AS r FROM {db.quote_ident(schema)}."
            f"{db.quote_ident(table)}) AS t"
        )
        out[table] = (row["n"], row["sum"])
    return out


async def caught_up(settings: Settings, conn: asyncpg.Connection) -> None:
    consumer = AIOKafkaConsumer(**consumer_config(settings))
    await consumer.start()
    try:
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(**kafka_client_kwargs(settings))
        await admin.start()
        try:
            tps = await partitions_of(admin, settings.topics.event_topics)
        finally:
            await admin.close()
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    async with asyncio.timeout(120):
        while True:
            stored = {
                (r[0], r[1]): r[2]
                for r in await conn.fetch(
                    "SELECT topic, kafka_partition, next_offset FROM projection.projector_offsets"
                )
            }
            if all(stored.get((tp.topic, tp.partition), 0) >= end for tp, end in ends.items()):
                return
            await asyncio.sleep(0.2)


async def build_reference(settings: Settings, schema: str) -> None:
    """The per-event path, one event at a time, partition by partition."""
    conn = await asyncpg.connect(settings.database_url, server_settings={"search_path": schema})
    await db.setup_codecs(conn)
    consumer = AIOKafkaConsumer(**consumer_config(settings))
    await consumer.start()
    try:
        await db.migrate(conn, schema)
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(**kafka_client_kwargs(settings))
        await admin.start()
        try:
            tps = await partitions_of(admin, settings.topics.event_topics)
        finally:
            await admin.close()
        ends = await consumer.end_offsets(tps)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        for tp in tps:
            if not ends[tp]:
                continue
            consumer.pause(*[p for p in tps if p != tp])
            consumer.resume(tp)
            done = False
            while not done:
                batch = await consumer.getmany(tp, timeout_ms=500)
                for record in batch.get(tp, []):
                    # As the projector: an event the database refuses is rolled back
                    # (raw row too) and set aside.
                    with contextlib.suppress(asyncpg.PostgresError):
                        await _apply_alone(conn, record)
                    done = record.offset + 1 >= ends[tp]
    finally:
        await consumer.stop()
        await conn.close()


async def _apply_alone(conn: asyncpg.Connection, record: Any) -> None:
    async with conn.transaction():
        await apply_event(
            conn,
            ev.decode(record.value),
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            traceparent=traceparent_of(record),
        )


async def test_rebuilt_projection_equals_the_original(settings: Settings) -> None:
    published = envelopes(workload())
    kinds = {type(e.data).__name__ for _, e in published}
    assert {
        "TaskInstanceMapExpanded",
        "TaskAttemptRescheduled",
        "TaskInstanceUpForRetry",
        "TaskInstanceCleared",
        "DagRunStateSet",
        "VariableDeleted",
        "PoolSet",
    } <= kinds
    assert len(published) > 1500, len(published)
    conn = await asyncpg.connect(settings.database_url)
    try:
        async with EventProducer(settings, source="tests/rebuild") as producer:
            async with background(projector.run(settings)):
                # Published in bursts while the live projector runs; every tenth event twice.
                for i, (kind, envelope) in enumerate(published):
                    fut = await producer.send_soon(getattr(settings.topics, kind), envelope)
                    if i % 10 == 0:
                        await producer.send_soon(getattr(settings.topics, kind), envelope)
                    if i % 200 == 0:
                        await fut
                        await asyncio.sleep(0.05)
                await producer.flush()
                await caught_up(settings, conn)
                original = await checksums(conn, db.LIVE_SCHEMA)

                # 1. Batched projection == the per-event path.
                await build_reference(settings, "projection_reference")
                reference = await checksums(conn, "projection_reference")
                # Every statement the plans emitted is in the dispatch function (none
                # fell back to a round trip of its own).
                assert unregistered_statements() == frozenset()
                for table, value in reference.items():
                    if table not in PROJECTOR_TABLES:
                        assert original[table] == value, table

                # 2. Rebuild while the live projector serves, then swap.
                await projector.rebuild_projection(settings, within_s=120)
                rebuilt = await checksums(conn, db.LIVE_SCHEMA)
        assert rebuilt == original
        counts = {t: n for t, (n, _) in original.items()}
        # Duplicates are stored once. (DagRunStateSet may be refused by its handler and
        # dead-lettered, in both projections alike: it is not counted on.)
        marks = sum(isinstance(e.data, ev.DagRunStateSet) for _, e in published)
        assert len(published) - marks <= counts["events"] <= len(published)
        assert counts["dag_runs"] == RUNS and counts["task_instances"] > 100
        assert counts["xcom"] > 0 and counts["task_reschedule"] > 0 and counts["task_map"] > 0
        assert counts["variables"] > 0 and counts["connections"] > 0
        if handler_for(ev.PoolSet) is not None:
            assert counts.get("pools", 0) > 0
    finally:
        await conn.close()
