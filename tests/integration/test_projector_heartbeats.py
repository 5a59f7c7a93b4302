"""Heartbeats in the projection (ADR 0010): each moves its attempt's
``last_heartbeat_at`` forward (only the starting executor's count) and none is stored
in the raw ``events`` table; a rebuild gives the same rows."""

from __future__ import annotations

import uuid

import pytest
from ledgerflow.api.projector import rebuild_projection
from ledgerflow.common import events as ev
from ledgerflow.common.kafka_io import EventProducer
from ledgerflow.common.settings import Settings
from test_projector import (  # noqa: F401 - fixtures
    DAG_ID,
    RUN_ID,
    connect,
    env,
    producer,
    project,
    publish,
    settings,
    snapshot,
    story,
    t,
)

pytestmark = pytest.mark.integration


def beat(executor_id: str, seconds: float, try_number: int = 2) -> ev.Envelope:
    data = ev.TaskAttemptHeartbeat(
        dag_id=DAG_ID,
        run_id=RUN_ID,
        task_id="a",
        try_number=try_number,
        executor_id=executor_id,
        at=t(seconds),
    )
    return env(data, id=str(uuid.uuid4()))


async def last_beats(settings: Settings) -> dict[int, object]:  # noqa: F811
    conn = await connect(settings)
    try:
        rows = await conn.fetch(
            "SELECT try_number, last_heartbeat_at FROM task_attempts WHERE task_id = 'a'"
        )
        stored = await conn.fetchval(
            "SELECT count(*) FROM events WHERE event_type = 'TaskAttemptHeartbeat'"
        )
    finally:
        await conn.close()
    assert stored == 0
    return {r["try_number"]: r["last_heartbeat_at"] for r in rows}


async def test_heartbeats_update_the_attempt_and_are_not_stored(
    settings: Settings,  # noqa: F811
    producer: EventProducer,  # noqa: F811
) -> None:
    items = story()[:13]  # a's try 2 has started on e2 (try 1 ended on e1)
    repeated = beat("e2", 7.5)
    beats = [
        ("runs", beat("e2", 7.2)),
        ("runs", repeated),
        ("runs", repeated),  # redelivered
        ("runs", beat("e2", 7.3)),  # late, older than the latest
        ("runs", beat("elsewhere", 9)),  # a duplicate run elsewhere keeps nothing alive
        ("runs", beat("e1", 8, try_number=1)),  # a finished attempt's late beat
    ]
    await publish(settings, producer, items + beats)
    await project(settings)
    assert await last_beats(settings) == {1: None, 2: t(7.5)}

    before = await snapshot(settings)
    assert len(before["events"]) == len(items)
    await rebuild_projection(settings, within_s=60)
    assert await snapshot(settings) == before
