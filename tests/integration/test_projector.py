"""The projector against real Kafka and Postgres: rows, redelivery, dead letters, rebuild.

Each test gets its own topic prefix and its own database (created on the dev server,
dropped afterwards).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from ledgerflow.api import db
from ledgerflow.api.projector import Projector, rebuild_projection, run
from ledgerflow.common import events as ev
from ledgerflow.common.dagmodel import SerializedDag, SerializedTask
from ledgerflow.common.kafka_io import EventProducer, consumer_config, ensure_topics
from ledgerflow.common.settings import Settings
from ledgerflow.common.topics import attempt_key

pytestmark = pytest.mark.integration

KAFKA = os.environ.get("LEDGERFLOW_KAFKA_BOOTSTRAP", "127.0.0.1:29092")
DATABASE = os.environ.get(
    "LEDGERFLOW_DATABASE_URL", "postgresql://ledgerflow@127.0.0.1:25432/ledgerflow"
)
T0 = datetime(2026, 11, 24, 1, 2, 3, 123, tzinfo=UTC)
DAG_ID = "diamond"
RUN_ID = "manual__2026-11-24T01:02:03.000123+00:00"


def _db_url(name: str) -> str:
    base, _, _ = DATABASE.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture
async def settings() -> AsyncIterator[Settings]:
    name = f"lf_test_projector_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(DATABASE)
    await admin.execute(f'CREATE DATABASE "{name}"')
    s = Settings(
        kafka_bootstrap=KAFKA,
        database_url=_db_url(name),
        topic_prefix=f"dev-api-proj-{uuid.uuid4().hex[:8]}",
        partitions=2,
        work_partitions=2,
        admin_password="x",
    )
    await ensure_topics(s)
    try:
        yield s
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def producer(settings: Settings) -> AsyncIterator[EventProducer]:
    async with EventProducer(settings, source="tests/projector") as p:
        yield p


def dag() -> SerializedDag:
    return SerializedDag(
        dag_id=DAG_ID,
        fileloc="/dags/diamond.py",
        description="a diamond",
        tags=("example", "diamond"),
        owner="data",
        tasks=(
            SerializedTask(task_id="a", operator="PythonOperator", retries=1, owner="data"),
            SerializedTask(task_id="b", operator="BashOperator", upstream_task_ids=("a",)),
        ),
    )


def env(
    data: Any, seq: int = 0, at: datetime = T0, *, key: str = DAG_ID, id: str | None = None
) -> ev.Envelope:
    return ev.make_envelope(
        data,
        id=id or str(uuid.uuid4()),
        source="tests/projector",
        time=at,
        aggregate_key=key,
        sequence=seq,
        correlation_id=RUN_ID,
    )


def t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def story() -> list[tuple[str, ev.Envelope]]:
    """(topic kind, envelope): a run where `a` fails once, succeeds on retry, `b` is skipped."""
    ref = dict(dag_id=DAG_ID, run_id=RUN_ID)
    a = dict(ref, task_id="a")
    runs: list[Any] = [
        ev.DagPauseChanged(dag_id=DAG_ID, is_paused=True),
        ev.DagPauseChanged(dag_id=DAG_ID, is_paused=False),
        ev.DagRunQueued(**ref, version_id="v1", conf={"x": 1}, queued_at=t(1)),
        ev.DagRunStarted(**ref, start_date=t(2)),
        ev.TaskInstanceQueued(**a, try_number=1, queue="default", queued_when=t(3)),
        ev.TaskAttemptStarted(**a, try_number=1, start_date=t(4), hostname="h1", executor_id="e1"),
        ev.TaskAttemptFailed(**a, try_number=1, end_date=t(5), error="boom", executor_id="e1"),
        ev.TaskInstanceUpForRetry(**a, try_number=1, retry_at=t(6)),
        ev.TaskInstanceQueued(**a, try_number=2, queue="default", queued_when=t(6)),
        # A stale report for try 1 arriving after try 2 was queued: must change nothing.
        ev.TaskAttemptSucceeded(**a, try_number=1, end_date=t(6.5), executor_id="zombie"),
        ev.TaskAttemptStarted(**a, try_number=2, start_date=t(7), hostname="h2", executor_id="e2"),
        ev.TaskAttemptSucceeded(
            **a, try_number=2, end_date=t(8.5), return_value={"n": 3}, executor_id="e2"
        ),
        ev.TaskInstanceSkipped(**ref, task_id="b", at=t(9)),
        ev.DagRunSucceeded(**ref, end_date=t(10)),
    ]
    out: list[tuple[str, ev.Envelope]] = [
        (
            "dags",
            env(
                ev.DagVersionPublished(
                    dag_id=DAG_ID,
                    version_id="v1",
                    dag=dag(),
                    source_code="print()",
                    filename="diamond.py",
                ),
                id=ev.deterministic_id("DagVersionPublished", "v1"),
            ),
        ),
        ("commands", env(ev.TriggerDagRun(dag_id=DAG_ID, run_id=RUN_ID))),
    ]
    out += [("runs", env(p, seq=i + 1, at=t(i))) for i, p in enumerate(runs)]
    for chunk, (try_number, text) in enumerate([(1, "hello"), (2, "again")]):
        line = ev.LogLine(ts=t(4 + chunk), stream="stdout", text=text)
        out.append(
            (
                "logs",
                env(
                    ev.TaskLogChunk(**a, try_number=try_number, chunk=0, lines=(line,)),
                    key=attempt_key(DAG_ID, RUN_ID, "a", -1, try_number),
                ),
            )
        )
    return out


async def publish(
    settings: Settings, producer: EventProducer, items: list[tuple[str, ev.Envelope]]
) -> None:
    for kind, envelope in items:
        await producer.send(getattr(settings.topics, kind), envelope)


async def project(settings: Settings, schema: str = db.LIVE_SCHEMA) -> None:
    async with Projector(settings, schema=schema) as p:
        await p.catch_up(within_s=30)


async def rebuilt_and_compared(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """The projection's rows, after checking that a rebuild from the log gives the same."""
    after = await snapshot(settings)
    await rebuild_projection(settings, within_s=60)
    assert await snapshot(settings) == after
    return after


async def every_event_once(settings: Settings, items: list[tuple[str, ev.Envelope]]) -> None:
    """Each of ``items`` projected exactly once, the stored offsets at the log's end, and
    the rows what a rebuild gives."""
    after = await rebuilt_and_compared(settings)
    assert len(after["events"]) == len(items)
    assert sum(o["next_offset"] for o in after["projector_offsets"]) == len(items)


async def dead_letters(settings: Settings, n: int) -> list[Any]:
    """The first ``n`` records of the dead-letter topic (waiting up to 10 s for them)."""
    consumer = AIOKafkaConsumer(**consumer_config(settings))
    await consumer.start()
    try:
        tp = TopicPartition(settings.topics.dead_letters, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        got: list[Any] = []
        async with asyncio.timeout(10):
            while len(got) < n:
                got += (await consumer.getmany(tp, timeout_ms=500)).get(tp, [])
    finally:
        await consumer.stop()
    return got


async def connect(settings: Settings) -> asyncpg.Connection:
    conn = await asyncpg.connect(
        settings.database_url, server_settings={"search_path": db.LIVE_SCHEMA}
    )
    await db.setup_codecs(conn)
    return conn


TABLES = {
    "events": "event_id",
    "dags": "dag_id",
    "dag_versions": "version_id",
    "dag_runs": "dag_id, run_id",
    "task_instances": "dag_id, run_id, task_id, map_index",
    "task_attempts": "dag_id, run_id, task_id, map_index, try_number",
    "task_logs": "dag_id, run_id, task_id, map_index, try_number, chunk",
}


async def snapshot(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    conn = await connect(settings)
    try:
        out = {
            t: [dict(r) for r in await conn.fetch(f"SELECT * FROM {t} ORDER BY {pk}")]
            for t, pk in TABLES.items()
        }
        for row in out["events"]:
            # Numbered in the order events were projected (migration 0005): a rebuild
            # may interleave partitions differently, so it is not part of the log.
            row.pop("event_log_id", None)
        out["projector_offsets"] = [
            dict(r)
            for r in await conn.fetch(
                "SELECT topic, kafka_partition, next_offset FROM projector_offsets ORDER BY 1, 2"
            )
        ]
        return out
    finally:
        await conn.close()


async def test_projects_a_run_story(settings: Settings, producer: EventProducer) -> None:
    await publish(settings, producer, story())
    await project(settings)
    snap = await snapshot(settings)

    assert len(snap["events"]) == len(story())
    [d] = snap["dags"]
    assert d["is_paused"] is False and d["latest_version_id"] == "v1"
    assert d["tags"] == ["example", "diamond"] and d["owners"] == ["airflow", "data"]
    [v] = snap["dag_versions"]
    assert v["version_number"] == 1 and v["serialized_dag"]["dag_id"] == DAG_ID
    [r] = snap["dag_runs"]
    assert (r["state"], r["conf"], r["start_date"], r["end_date"]) == (
        "success",
        {"x": 1},
        t(2),
        t(10),
    )
    a, b = snap["task_instances"]
    assert (a["task_id"], a["state"], a["try_number"], a["hostname"]) == ("a", "success", 2, "h2")
    assert (a["start_date"], a["end_date"], a["duration"]) == (t(7), t(8.5), 1.5)
    assert (
        a["operator"] == "PythonOperator" and a["max_tries"] == 1 and a["return_value"] == {"n": 3}
    )
    assert (b["task_id"], b["state"], b["try_number"], b["operator"]) == (
        "b",
        "skipped",
        0,
        "BashOperator",
    )
    att1, att2 = snap["task_attempts"]
    assert (att1["try_number"], att1["error"], att1["hostname"]) == (1, "boom", "h1")
    # An attempt's first verdict is final: the zombie's late report changes nothing.
    assert att1["state"] == "failed" and att1["executor_id"] == "e1"
    assert (att2["state"], att2["duration"]) == ("success", 1.5)
    assert [row["lines"][0]["text"] for row in snap["task_logs"]] == ["hello", "again"]
    assert sum(o["next_offset"] for o in snap["projector_offsets"]) == len(story())


async def test_stale_report_does_not_overwrite_newer_try(
    settings: Settings, producer: EventProducer
) -> None:
    items = story()[:12]  # up to and including the zombie's late success for try 1
    await publish(settings, producer, items)
    await project(settings)
    a = (await snapshot(settings))["task_instances"][0]
    assert (a["state"], a["try_number"], a["start_date"], a["end_date"]) == (
        "queued",
        2,
        None,
        None,
    )


async def test_redelivery_and_replay_are_no_ops(
    settings: Settings, producer: EventProducer
) -> None:
    items = story()
    await publish(settings, producer, items)
    await project(settings)
    before = await snapshot(settings)

    # Restart: seeks to the stored offsets, nothing new to do.
    await project(settings)
    assert await snapshot(settings) == before

    # Forget the offsets: every message is delivered again; event ids make it a no-op.
    conn = await connect(settings)
    await conn.execute("DELETE FROM projector_offsets")
    await conn.close()
    await project(settings)
    assert await snapshot(settings) == before

    # The same events published again (same ids, new offsets): rows unchanged.
    await publish(settings, producer, items)
    await project(settings)
    after = await snapshot(settings)
    assert {k: v for k, v in after.items() if k != "projector_offsets"} == {
        k: v for k, v in before.items() if k != "projector_offsets"
    }
    assert sum(o["next_offset"] for o in after["projector_offsets"]) == 2 * len(items)


async def test_malformed_message_is_dead_lettered_and_projection_goes_on(
    settings: Settings, producer: EventProducer
) -> None:
    await producer.raw.send_and_wait(settings.topics.runs, b"{not json", key=DAG_ID.encode())
    await publish(settings, producer, story()[:1])
    await producer.raw.send_and_wait(settings.topics.dags, b'{"id": "x"}', key=DAG_ID.encode())
    await publish(settings, producer, story()[2:3])  # DagPauseChanged after the bad one
    await project(settings)
    snap = await snapshot(settings)
    assert [d["dag_id"] for d in snap["dags"]] == [DAG_ID]
    assert snap["dags"][0]["is_paused"] is True
    assert sum(o["next_offset"] for o in snap["projector_offsets"]) == 4

    got = await dead_letters(settings, 2)
    assert {r.value for r in got} == {b"{not json", b'{"id": "x"}'}
    headers = dict(got[0].headers)
    assert headers["ledgerflow-dlq-consumer"] == b"ledgerflow-projector"
    assert (
        b"not JSON" in headers["ledgerflow-dlq-reason"]
        or b"invalid" in headers["ledgerflow-dlq-reason"]
    )


async def test_rebuild_gives_identical_rows(settings: Settings, producer: EventProducer) -> None:
    await publish(settings, producer, story())
    await project(settings)
    before = await snapshot(settings)
    await rebuild_projection(settings, within_s=60)
    assert await snapshot(settings) == before
    conn = await asyncpg.connect(settings.database_url)
    schemas = {
        r[0]
        for r in await conn.fetch(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'projection%'"
        )
    }
    await conn.close()
    assert schemas == {db.LIVE_SCHEMA}


async def test_version_after_run_still_creates_task_instances(
    settings: Settings, producer: EventProducer
) -> None:
    """Topics interleave freely: a run projected before its DAG version gets its tasks later."""
    items = story()
    await publish(settings, producer, [i for i in items if i[0] == "runs"][:3])
    await project(settings)
    assert (await snapshot(settings))["task_instances"] == []
    await publish(settings, producer, items[:1])
    await project(settings)
    tis = (await snapshot(settings))["task_instances"]
    assert [(ti["task_id"], ti["state"]) for ti in tis] == [("a", None), ("b", None)]


async def test_run_entry_point_projects_until_cancelled(
    settings: Settings, producer: EventProducer
) -> None:
    task = asyncio.create_task(run(settings))
    try:
        await publish(settings, producer, story()[:5])
        async with asyncio.timeout(30):
            while True:
                with contextlib.suppress(
                    asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError
                ):
                    snap = await snapshot(settings)
                    if snap["dag_runs"]:
                        break
                await asyncio.sleep(0.1)
        conn = await connect(settings)
        status = await conn.fetchrow("SELECT * FROM projector_status")
        await conn.close()
        assert status["events_applied"] >= 5
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_rebuild_while_a_live_projector_runs(
    settings: Settings, producer: EventProducer
) -> None:
    """The live projector notices the swapped schema's offsets and carries on from them."""
    items = story()
    live = asyncio.create_task(run(settings))

    async def wait_for_events(n: int) -> None:
        async with asyncio.timeout(30):
            while True:
                with contextlib.suppress(
                    asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError
                ):
                    if len((await snapshot(settings))["events"]) >= n:
                        return
                await asyncio.sleep(0.1)

    try:
        await publish(settings, producer, items[:8])
        await wait_for_events(8)
        await rebuild_projection(settings, within_s=60)
        await publish(settings, producer, items[8:])
        await wait_for_events(len(items))
        await asyncio.sleep(0.5)  # let the live projector settle
    finally:
        live.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await live
    after = await rebuilt_and_compared(settings)
    assert len(after["events"]) == len(items)


async def test_two_projectors_on_one_schema_resync_from_stored_offsets(
    settings: Settings, producer: EventProducer
) -> None:
    items = story()
    await publish(settings, producer, items[:6])
    async with Projector(settings) as first:
        await first.catch_up(within_s=30)
        # Someone else moves the offsets on (a second projector, or a rebuild's swap).
        await publish(settings, producer, items[6:12])
        await project(settings)
        await rebuild_projection(settings, within_s=60)
        await publish(settings, producer, items[12:])
        await first.catch_up(within_s=30)
    await every_event_once(settings, items)


async def test_a_running_projector_resyncs_when_its_offsets_move_under_it(
    settings: Settings, producer: EventProducer, caplog: pytest.LogCaptureFixture
) -> None:
    """``run`` fetches the next batch while one is in Postgres. When a batch finds that
    someone else moved a partition's stored offset (here: back to the start, as a
    restored backup would), what was fetched ahead for that partition is dropped, the
    projector seeks to the stored offset and reads from there; the events it reads
    again are duplicates and change nothing."""
    caplog.set_level(logging.INFO, logger="ledgerflow.api.projector")
    items = story()
    live = asyncio.create_task(run(settings))

    async def stored_total() -> int:
        conn = await connect(settings)
        try:
            total = await conn.fetchval("SELECT sum(next_offset) FROM projector_offsets")
        finally:
            await conn.close()
        return int(total or 0)

    async def until_stored(n: int) -> None:
        async with asyncio.timeout(30):
            while True:
                with contextlib.suppress(asyncpg.UndefinedTableError):
                    if await stored_total() >= n:
                        return
                await asyncio.sleep(0.05)

    try:
        await publish(settings, producer, items[:10])
        await until_stored(10)
        conn = await connect(settings)
        try:
            moved = await conn.fetchval(
                "UPDATE projector_offsets SET next_offset = 0 WHERE topic = $1"
                " AND next_offset > 0 RETURNING kafka_partition",
                settings.topics.runs,
            )
        finally:
            await conn.close()
        assert moved is not None
        await publish(settings, producer, items[10:])
        await until_stored(len(items))
        await asyncio.sleep(0.3)  # nothing more should move
    finally:
        live.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await live
    # The batch that met the moved offset saw it with its raw events (one round trip),
    # rolled back, and was redone the careful way, which seeks.
    assert "stored offsets moved under us" in caplog.text
    assert f"{settings.topics.runs}[{moved}] stored offset moved to 0; seeking" in caplog.text
    await every_event_once(settings, items)


async def test_a_missing_dispatch_function_is_installed_again(
    settings: Settings, producer: EventProducer
) -> None:
    """The batch path runs planned statements through the schema's dispatch function.
    If it is gone (a rebuild by another version swapped its schema in), the batch is
    redone event by event, the function is installed again, and later batches use it."""
    items = story()
    async with Projector(settings) as p:
        await publish(settings, producer, items[:6])
        await p.catch_up(within_s=30)
        conn = await connect(settings)
        try:
            names = await conn.fetch(
                "SELECT p.oid::regprocedure::text AS f FROM pg_proc p"
                " WHERE proname LIKE 'lf_apply_%' AND pronamespace = current_schema()::regnamespace"
            )
            assert len(names) == 1
            await conn.execute(f"DROP FUNCTION {names[0]['f']}")
            await publish(settings, producer, items[6:])
            await p.catch_up(within_s=30)
            again = await conn.fetchval(
                "SELECT count(*) FROM pg_proc WHERE proname LIKE 'lf_apply_%'"
                " AND pronamespace = current_schema()::regnamespace"
            )
        finally:
            await conn.close()
    assert again == 1
    after = await rebuilt_and_compared(settings)
    assert len(after["events"]) == len(items)


async def test_an_event_the_database_refuses_is_dead_lettered_and_the_batch_goes_on(
    settings: Settings, producer: EventProducer
) -> None:
    """A batch that fails on a row (here a priority weight beyond Postgres's integer) is
    redone one savepoint per event: that event goes to the dead-letter topic with the
    database's reason, every other event of the batch is projected, and the offsets
    move past all of them."""
    items = story()
    bad = env(
        ev.TaskInstanceQueued(
            dag_id=DAG_ID,
            run_id=RUN_ID,
            task_id="c",
            map_index=-1,
            try_number=1,
            queue="default",
            priority_weight=2**40,
            queued_when=t(3),
        ),
        seq=99,
    )
    await publish(settings, producer, [*items[:6], ("runs", bad), *items[6:]])
    await project(settings)
    snap = await snapshot(settings)
    assert len(snap["events"]) == len(items)
    assert bad.id not in {e["event_id"] for e in snap["events"]}
    assert sum(o["next_offset"] for o in snap["projector_offsets"]) == len(items) + 1
    conn = await connect(settings)
    try:
        assert await conn.fetchval("SELECT dead_lettered FROM projector_status") == 1
    finally:
        await conn.close()

    got = await dead_letters(settings, 1)
    reason = dict(got[0].headers)["ledgerflow-dlq-reason"]
    assert reason.startswith(b"projection refused the event"), reason
    assert ev.Envelope.model_validate_json(got[0].value).id == bad.id


async def test_under_load_a_commit_begins_the_next_batch(
    settings: Settings, producer: EventProducer
) -> None:
    """With batches waiting, ``run`` commits each and begins the next one's transaction
    in one message (analyzing young tables now and then, on another connection). Nothing
    is lost or applied twice: the rows equal a rebuild."""
    a = dict(dag_id=DAG_ID, run_id=RUN_ID, task_id="a", try_number=1)
    chunks = [
        (
            "logs",
            env(
                ev.TaskLogChunk(
                    **a, chunk=n, lines=(ev.LogLine(ts=t(n), stream="stdout", text=f"{n}"),)
                ),
                key=attempt_key(DAG_ID, RUN_ID, "a", -1, 1),
            ),
        )
        for n in range(1500)
    ]
    items = story() + chunks
    await publish(settings, producer, items)
    async with Projector(settings) as p:
        p.max_batch = 100  # many batches, each waiting for the one before
        p._analyze_at = 50  # and tables analyzed along the way (50, 100, 200, ... events)
        live = asyncio.create_task(p.run())
        try:
            async with asyncio.timeout(60):
                while sum(p._stored.values()) < len(items):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
        finally:
            live.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await live
        assert p.chained_commits > 0
        assert p.analyses >= 4
    await every_event_once(settings, items)


async def test_plans_made_while_the_tables_were_empty_do_not_stay(
    settings: Settings, producer: EventProducer
) -> None:
    """Postgres plans a statement it runs often once and keeps the plan. Planned on a new
    schema's empty ``dag_runs``, "update the run (dag_id, run_id)" reads the index on
    (dag_id, queued_at) and filters on run_id: every earlier run of the DAG, for each
    update, about runs squared reads in all. The projector analyzes its young tables as
    the events it applied double, and the new statistics replace that plan."""
    runs = 600
    story_items = story()
    items = story_items[:1]  # the DAG version
    for n in range(runs):
        ref = dict(dag_id=DAG_ID, run_id=f"manual__{n:04d}")
        items += [
            ("runs", env(ev.DagRunQueued(**ref, version_id="v1", queued_at=t(n)))),
            ("runs", env(ev.DagRunStarted(**ref, start_date=t(n)))),
            ("runs", env(ev.DagRunSucceeded(**ref, end_date=t(n + 1)))),
        ]
    await publish(settings, producer, items)
    async with Projector(settings) as p:
        p.max_batch = 50
        p._analyze_at = 300
        await p.catch_up(within_s=60)
        assert p.analyses >= 2
    conn = await connect(settings)
    try:
        reads = await conn.fetchval(
            "SELECT idx_tup_read FROM pg_stat_user_indexes"
            " WHERE schemaname = $1 AND indexrelname = 'dag_runs_queued_idx'",
            db.LIVE_SCHEMA,
        )
        finished = await conn.fetchval("SELECT count(*) FROM dag_runs WHERE state = 'success'")
    finally:
        await conn.close()
    assert finished == runs
    assert reads < runs * runs / 4, reads
