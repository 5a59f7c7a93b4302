"""The projector's ADR 0006 tables against real Kafka and Postgres: skipped and
rescheduled attempts, mapped-task expansion, XComs, rendered fields, and a rebuild that
reproduces them.

Each test gets its own topic prefix and its own database (``make_settings``).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from ledgerflow.api import db
from ledgerflow.api.projector import Projector, rebuild_projection
from ledgerflow.common import events as ev
from ledgerflow.common.dagmodel import MapSource, MapSpec, SerializedDag, SerializedTask
from ledgerflow.common.kafka_io import EventProducer, ensure_topics
from ledgerflow.common.settings import Settings

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 24, 1, 2, 3, 123, tzinfo=UTC)
DAG_ID = "mapped"
RUN_ID = "manual__2026-11-24T01:02:03.000123+00:00"
REF = {"dag_id": DAG_ID, "run_id": RUN_ID}


def t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def dag() -> SerializedDag:
    return SerializedDag(
        dag_id=DAG_ID,
        fileloc="/dags/mapped.py",
        tasks=(
            SerializedTask(task_id="make", operator="_PythonDecoratedOperator"),
            SerializedTask(
                task_id="double",
                operator="_PythonDecoratedOperator",
                upstream_task_ids=("make",),
                retries=2,
                mapped=MapSpec(sources=(MapSource(arg="x", task_id="make"),)),
            ),
            SerializedTask(
                task_id="none_to_map",
                operator="_PythonDecoratedOperator",
                upstream_task_ids=("make",),
                mapped=MapSpec(sources=(MapSource(arg="x", literal_length=0),)),
            ),
            SerializedTask(
                task_id="wait",
                operator="PythonSensor",
                queue="sensors",
            ),
            SerializedTask(task_id="maybe", operator="BashOperator"),
        ),
    )


def version() -> ev.DagVersionPublished:
    return ev.DagVersionPublished(
        dag_id=DAG_ID,
        version_id="v1",
        dag=dag(),
        source_code="# mapped",
        filename="mapped.py",
        extra_files={"sql/q.sql": "select 1"},
    )


class Log:
    """Publishes envelopes to the topics and numbers the run log like the scheduler."""

    def __init__(self, settings: Settings, producer: EventProducer) -> None:
        self.settings = settings
        self.producer = producer
        self.sequence = 0

    async def dags(self, data: ev.DagVersionPublished) -> None:
        envelope = ev.make_envelope(
            data,
            id=ev.deterministic_id("DagVersionPublished", data.version_id),
            source="tests/projector",
            time=T0,
            aggregate_key=DAG_ID,
        )
        await self.producer.send(self.settings.topics.dags, envelope)

    async def runs(self, *facts: Any, at: datetime = T0) -> None:
        for fact in facts:
            self.sequence += 1
            envelope = ev.make_envelope(
                fact,
                id=str(uuid.uuid4()),
                source="tests/projector",
                time=at,
                aggregate_key=DAG_ID,
                sequence=self.sequence,
                correlation_id=RUN_ID,
            )
            await self.producer.send(self.settings.topics.runs, envelope)


@pytest.fixture
async def settings(make_settings: Callable[..., Settings]) -> Settings:
    s = make_settings(partitions=2, work_partitions=2, admin_password="x")
    await ensure_topics(s)
    return s


@pytest.fixture
async def log(settings: Settings) -> AsyncIterator[Log]:
    async with EventProducer(settings, source="tests/projector") as producer:
        yield Log(settings, producer)


async def project(settings: Settings) -> None:
    async with Projector(settings) as projector:
        await projector.catch_up(within_s=30)


async def rows(settings: Settings, sql: str, *args: Any) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(
        settings.database_url, server_settings={"search_path": db.LIVE_SCHEMA}
    )
    try:
        await db.setup_codecs(conn)
        return [dict(r) for r in await conn.fetch(sql, *args)]
    finally:
        await conn.close()


async def tis(settings: Settings, task_id: str | None = None) -> list[dict[str, Any]]:
    where = "" if task_id is None else " WHERE task_id = $1"
    args = () if task_id is None else (task_id,)
    return await rows(
        settings, f"SELECT * FROM task_instances{where} ORDER BY task_id, map_index", *args
    )


def queued(task_id: str, try_number: int = 1, map_index: int = -1, at: float = 0) -> Any:
    return ev.TaskInstanceQueued(
        **REF,
        task_id=task_id,
        map_index=map_index,
        try_number=try_number,
        queue="default",
        queued_when=t(at),
    )


def started(task_id: str, try_number: int = 1, map_index: int = -1, at: float = 0) -> Any:
    return ev.TaskAttemptStarted(
        **REF,
        task_id=task_id,
        map_index=map_index,
        try_number=try_number,
        start_date=t(at),
        hostname="h",
        executor_id="e",
    )


def succeeded(
    task_id: str, try_number: int = 1, map_index: int = -1, at: float = 0, **kw: Any
) -> Any:
    return ev.TaskAttemptSucceeded(
        **REF,
        task_id=task_id,
        map_index=map_index,
        try_number=try_number,
        end_date=t(at),
        executor_id="e",
        **kw,
    )


RUN_QUEUED = ev.DagRunQueued(**REF, version_id="v1", queued_at=T0)


# ---------------------------------------------------------------------------- tests


async def test_skipped_and_rescheduled_attempts(settings: Settings, log: Log) -> None:
    await log.dags(version())
    await log.runs(
        RUN_QUEUED,
        queued("maybe"),
        started("maybe", at=1),
        ev.TaskAttemptSkipped(
            **REF,
            task_id="maybe",
            try_number=1,
            end_date=t(2),
            reason="exit code 99",
            executor_id="e",
            rendered_fields={"bash_command": "exit 99"},
        ),
        queued("wait"),
        started("wait", at=1),
        ev.TaskAttemptRescheduled(
            **REF,
            task_id="wait",
            try_number=1,
            end_date=t(1.5),
            reschedule_date=t(61.5),
            executor_id="e",
        ),
    )
    await project(settings)

    [maybe] = await tis(settings, "maybe")
    assert (maybe["state"], maybe["end_date"], maybe["duration"]) == ("skipped", t(2), 1.0)
    assert maybe["rendered_fields"] == {"bash_command": "exit 99"}
    [attempt] = await rows(settings, "SELECT * FROM task_attempts WHERE task_id = 'maybe'")
    assert (attempt["state"], attempt["reason"], attempt["error"]) == (
        "skipped",
        "exit code 99",
        None,
    )

    [wait] = await tis(settings, "wait")
    assert (wait["state"], wait["try_number"]) == ("up_for_reschedule", 1)
    [reschedule] = await rows(settings, "SELECT * FROM task_reschedule")
    assert (reschedule["task_id"], reschedule["try_number"]) == ("wait", 1)
    assert (reschedule["start_date"], reschedule["end_date"], reschedule["duration"]) == (
        t(1),
        t(1.5),
        0.5,
    )
    assert reschedule["reschedule_date"] == t(61.5)

    # The next poke is the next try: queued again, the reschedule stays on record.
    await log.runs(queued("wait", try_number=2, at=61.5), started("wait", try_number=2, at=62))
    await project(settings)
    [wait] = await tis(settings, "wait")
    assert (wait["state"], wait["try_number"], wait["end_date"]) == ("running", 2, None)
    assert len(await rows(settings, "SELECT * FROM task_reschedule")) == 1


async def test_map_expansion_xcoms_and_rendered_fields(settings: Settings, log: Log) -> None:
    await log.dags(version())
    await log.runs(
        RUN_QUEUED,
        queued("make"),
        started("make", at=1),
        succeeded(
            "make",
            at=2,
            return_value=[10, 20, 30],
            xcoms={"rows": 3, "nothing": None},
            rendered_fields={"op_args": "[]"},
        ),
    )
    await project(settings)
    assert [(r["task_id"], r["map_index"]) for r in await tis(settings)] == [
        ("double", -1),
        ("make", -1),
        ("maybe", -1),
        ("none_to_map", -1),
        ("wait", -1),
    ]

    await log.runs(
        ev.TaskInstanceMapExpanded(**REF, task_id="double", length=3, at=t(3)),
        ev.TaskInstanceMapExpanded(**REF, task_id="none_to_map", length=0, at=t(3)),
        queued("double", map_index=1, at=3),
        started("double", map_index=1, at=4),
        succeeded("double", map_index=1, at=5, return_value=40),
    )
    await project(settings)

    double = await tis(settings, "double")
    assert [r["map_index"] for r in double] == [0, 1, 2]
    assert {r["operator"] for r in double} == {"_PythonDecoratedOperator"}
    assert [r["max_tries"] for r in double] == [2, 2, 2]
    assert [r["state"] for r in double] == [None, "success", None]
    [none] = await tis(settings, "none_to_map")
    assert (none["map_index"], none["state"], none["end_date"]) == (-1, "skipped", t(3))
    assert await rows(settings, "SELECT task_id, length FROM task_map ORDER BY 1") == [
        {"task_id": "double", "length": 3},
        {"task_id": "none_to_map", "length": 0},
    ]

    xcoms = await rows(
        settings, "SELECT task_id, map_index, key, value, timestamp FROM xcom ORDER BY 1, 2, 3"
    )
    assert xcoms == [
        {
            "task_id": "double",
            "map_index": 1,
            "key": "return_value",
            "value": 40,
            "timestamp": t(5),
        },
        {"task_id": "make", "map_index": -1, "key": "nothing", "value": None, "timestamp": t(2)},
        {
            "task_id": "make",
            "map_index": -1,
            "key": "return_value",
            "value": [10, 20, 30],
            "timestamp": t(2),
        },
        {"task_id": "make", "map_index": -1, "key": "rows", "value": 3, "timestamp": t(2)},
    ]
    [make] = await tis(settings, "make")
    assert make["rendered_fields"] == {"op_args": "[]"}


async def test_a_version_projected_after_the_expansion_adds_no_placeholder(
    settings: Settings, log: Log
) -> None:
    await log.runs(
        RUN_QUEUED,
        ev.TaskInstanceMapExpanded(**REF, task_id="double", length=2, at=t(3)),
        queued("double", map_index=0, at=3),
    )
    await project(settings)
    assert [(r["map_index"], r["state"], r["operator"]) for r in await tis(settings)] == [
        (0, "queued", None)
    ]
    await log.dags(version())
    await project(settings)
    double = await tis(settings, "double")
    assert [(r["map_index"], r["state"], r["operator"]) for r in double] == [
        (0, "queued", "_PythonDecoratedOperator"),
        (1, None, "_PythonDecoratedOperator"),
    ]


async def test_only_the_latest_try_keeps_xcoms_and_errors_stay(
    settings: Settings, log: Log
) -> None:
    await log.dags(version())
    await log.runs(
        RUN_QUEUED,
        queued("make"),
        started("make", at=1),
        ev.TaskAttemptFailed(
            **REF,
            task_id="make",
            try_number=1,
            end_date=t(2),
            error="ValueError: boom",
            error_type="ValueError",
            executor_id="e",
            rendered_fields={"templates_dict": "{'a': 1}"},
        ),
        ev.TaskInstanceUpForRetry(**REF, task_id="make", try_number=1, retry_at=t(3)),
        queued("make", try_number=2, at=3),
        # A zombie's late success for try 1: its XComs must not appear.
        succeeded("make", try_number=1, at=3.5, return_value="stale", xcoms={"old": 1}),
        started("make", try_number=2, at=4),
        succeeded("make", try_number=2, at=5, return_value="fresh", xcoms={"new": 2}),
    )
    await project(settings)
    xcoms = await rows(settings, "SELECT key, value FROM xcom ORDER BY key")
    assert xcoms == [{"key": "new", "value": 2}, {"key": "return_value", "value": "fresh"}]
    attempts = await rows(
        settings, "SELECT try_number, state, error, error_type FROM task_attempts ORDER BY 1"
    )
    assert attempts == [
        {
            "try_number": 1,
            "state": "failed",
            "error": "ValueError: boom",
            "error_type": "ValueError",
        },
        {"try_number": 2, "state": "success", "error": None, "error_type": None},
    ]
    [make] = await tis(settings, "make")
    # Try 2 rendered nothing new (no rendered_fields in its report): try 1's stay.
    assert make["rendered_fields"] == {"templates_dict": "{'a': 1}"}


async def test_a_newer_try_reported_before_it_was_queued_replaces_the_xcoms(
    settings: Settings, log: Log
) -> None:
    """Try 2's success can reach the projection before the fact that queued try 2 (the
    executor's report and the scheduler's fact need not share a partition). Its XComs
    still replace try 1's: the statement that finishes the attempt deletes them, judging
    by the task instance as it was before that statement (no row of a newer try), and a
    late report of try 1 changes nothing."""
    await log.dags(version())
    await log.runs(
        RUN_QUEUED,
        queued("make"),
        started("make", at=1),
        succeeded("make", try_number=1, at=2, return_value="one", xcoms={"old": 1}),
        succeeded("make", try_number=2, at=5, return_value="two", xcoms={"new": 2}),
        queued("make", try_number=2, at=4),
        succeeded("make", try_number=1, at=6, return_value="late", xcoms={"older": 0}),
    )
    await project(settings)
    xcoms = await rows(settings, "SELECT key, value FROM xcom ORDER BY key")
    assert xcoms == [{"key": "new", "value": 2}, {"key": "return_value", "value": "two"}]
    [make] = await tis(settings, "make")
    assert (make["try_number"], make["state"]) == (2, "success")
    attempts = await rows(settings, "SELECT try_number, state FROM task_attempts ORDER BY 1")
    assert attempts == [
        {"try_number": 1, "state": "success"},
        {"try_number": 2, "state": "success"},
    ]


async def test_rebuild_reproduces_the_task_model_tables(settings: Settings, log: Log) -> None:
    await log.dags(version())
    await log.runs(
        RUN_QUEUED,
        queued("make"),
        succeeded("make", at=2, return_value=[1, 2], rendered_fields={"a": "b"}),
        ev.TaskInstanceMapExpanded(**REF, task_id="double", length=2, at=t(3)),
        queued("double", map_index=0, at=3),
        started("double", map_index=0, at=4),
        succeeded("double", map_index=0, at=5, return_value=2),
        queued("wait"),
        started("wait", at=1),
        ev.TaskAttemptRescheduled(
            **REF,
            task_id="wait",
            try_number=1,
            end_date=t(2),
            reschedule_date=t(9),
            executor_id="e",
        ),
        ev.TaskAttemptSkipped(
            **REF, task_id="maybe", try_number=1, end_date=t(2), reason="no", executor_id="e"
        ),
    )
    await project(settings)
    tables = ("task_instances", "task_attempts", "task_map", "task_reschedule", "xcom")

    async def snapshot() -> dict[str, list[dict[str, Any]]]:
        return {
            table: await rows(settings, f"SELECT * FROM {table} ORDER BY 1, 2, 3, 4")
            for table in tables
        }

    before = await snapshot()
    assert all(before[table] for table in tables), before
    await rebuild_projection(settings, within_s=60)
    assert await snapshot() == before


async def test_a_task_failed_by_the_scheduler_is_failed_with_the_reason(
    settings: Settings, log: Log
) -> None:
    await log.dags(version())
    await log.runs(
        RUN_QUEUED,
        queued("wait"),
        started("wait", at=1),
        ev.TaskAttemptRescheduled(
            **REF,
            task_id="wait",
            try_number=1,
            end_date=t(1.5),
            reschedule_date=t(61.5),
            executor_id="e",
        ),
        ev.TaskInstanceFailedByScheduler(
            **REF, task_id="wait", try_number=1, at=t(70), reason="sensor timed out"
        ),
        # Never ran: failed with no attempt (e.g. a value that cannot be mapped).
        ev.TaskInstanceFailedByScheduler(
            **REF, task_id="maybe", try_number=0, at=t(3), reason="cannot map over 3"
        ),
    )
    await project(settings)
    [wait] = await tis(settings, "wait")
    assert (wait["state"], wait["end_date"]) == ("failed", t(70))
    [attempt] = await rows(settings, "SELECT * FROM task_attempts WHERE task_id = 'wait'")
    # The last poke itself ended as a reschedule; the reason is recorded on it.
    assert (attempt["state"], attempt["reason"]) == ("up_for_reschedule", "sensor timed out")
    [maybe] = await tis(settings, "maybe")
    assert (maybe["state"], maybe["try_number"]) == ("failed", 0)
