"""The executor's liveness and control against real Kafka: heartbeats while an attempt
runs, a cancel on the control topic kills it (SIGTERM, then SIGKILL) and reports it as
asked, a cancel that precedes its work item keeps it from running, and a started
attempt's work item is committed at once (a dead executor's attempt is the zombie
detector's to retry)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from ledgerflow.common.events import CancelTaskAttempt, deterministic_id, make_envelope
from ledgerflow.common.settings import Settings
from test_executor import (  # noqa: F401 - fixtures
    DAG_ID,
    Harness,
    committed_total,
    h,
    producer,
    read_topic,
    reports_for,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(kafka_bootstrap: str, topic_prefix: str) -> Settings:
    return Settings(
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=f"{topic_prefix}-ctl",
        partitions=2,
        work_partitions=2,
        heartbeat_interval_seconds=0.3,
        cancel_grace_seconds=1.0,
    )


async def cancel(harness: Harness, task_id: str, state: str, try_number: int = 1) -> None:
    data = CancelTaskAttempt(
        dag_id=DAG_ID,
        run_id=harness.run_id,
        task_id=task_id,
        try_number=try_number,
        reason=f"marked {state} by test",
        state=state,  # type: ignore[arg-type]
    )
    env = make_envelope(
        data,
        id=deterministic_id("cancel", harness.run_id, task_id, try_number),
        source="tests/executor",
        time=datetime.now(UTC),
        aggregate_key=DAG_ID,
    )
    await harness.producer.send(harness.settings.topics.control, env)


def types_of(events, task_id):
    return [e.data.type for e in reports_for(events, task_id)]


async def test_heartbeats_then_cancel_kills_and_reports_the_asked_state(h: Harness) -> None:  # noqa: F811
    await h.publish_version()
    h.start_executor()
    await h.work("sleepy")
    events = await read_topic(
        h.settings,
        h.settings.topics.runs,
        lambda ev: types_of(ev, "sleepy").count("TaskAttemptHeartbeat") >= 3,
    )
    beats = [e.data for e in events if e.data.type == "TaskAttemptHeartbeat"]
    assert {b.try_number for b in beats} == {1}
    assert len({b.executor_id for b in beats}) == 1
    # Committed once started, while it still runs.
    assert await committed_total(h.settings) == 1

    t0 = time.monotonic()
    await cancel(h, "sleepy", "success")
    events = await read_topic(
        h.settings,
        h.settings.topics.runs,
        lambda ev: "TaskAttemptSucceeded" in types_of(ev, "sleepy"),
    )
    assert time.monotonic() - t0 < 10  # killed, not slept out (it sleeps 60 s)


async def test_cancel_before_the_work_item_keeps_it_from_running(h: Harness) -> None:  # noqa: F811
    await h.publish_version()
    h.start_executor()
    await h.work("hello")  # the executor is up and reading the control topic
    await read_topic(
        h.settings,
        h.settings.topics.runs,
        lambda ev: "TaskAttemptSucceeded" in types_of(ev, "hello"),
    )
    await cancel(h, "sleepy", "failed")
    await h.work("sleepy")
    events = await read_topic(
        h.settings,
        h.settings.topics.runs,
        lambda ev: "TaskAttemptFailed" in types_of(ev, "sleepy"),
    )
    sleepy = reports_for(events, "sleepy")
    assert [e.data.type for e in sleepy] == ["TaskAttemptFailed"]  # never started
    assert sleepy[0].data.error_type == "TaskCancelled"
    assert sleepy[0].data.retryable is False
