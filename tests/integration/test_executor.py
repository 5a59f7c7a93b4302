"""The executor against real Kafka: work items in, child processes run, reports, logs,
dead letters and commits out. The executor runs in-process as an asyncio task; the
task runner is the real ``python -m ledgerflow.sdk.runner``.

Kafka: ``LEDGERFLOW_KAFKA_BOOTSTRAP`` (the shared fixture; `make test` sets it; for the
dev broker: ``LEDGERFLOW_KAFKA_BOOTSTRAP=127.0.0.1:29092``). Each test uses its own topic
prefix.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from ledgerflow.common.dagmodel import SerializedDag
from ledgerflow.common.events import (
    DagVersionPublished,
    Envelope,
    RunTaskAttempt,
    deterministic_id,
    make_envelope,
)
from ledgerflow.common.kafka_io import EventProducer, decode_record, ensure_topics
from ledgerflow.common.settings import Settings
from ledgerflow.common.topics import attempt_key
from ledgerflow.executor import service

pytestmark = pytest.mark.integration

DAG_ID = "exec_demo"
FILENAME = "dags/exec_demo.py"
SOURCE = """
import os
import time

from ledgerflow.sdk import DAG, BashOperator, task

with DAG("exec_demo", schedule=None):

    @task
    def hello():
        for i in range(5):
            print(f"line {i}")
        return {"n": 5}

    @task
    def sleepy():
        print("going to sleep")
        time.sleep(60)

    @task
    def crash():
        print("about to exit")
        os._exit(3)

    @task
    def chatty():
        for i in range(2000):
            print(f"chatter {i:05d} " + "x" * 100)

    BashOperator(task_id="bash", bash_command="echo one; echo two >&2; echo three")
    hello()
    sleepy()
    crash()
    chatty()
"""


def _serialize(source: str, filename: str) -> SerializedDag:
    from ledgerflow.sdk.parse import parse

    result = parse(source, filename)
    assert result["ok"], result
    return SerializedDag.model_validate(result["dags"][0])


@pytest.fixture
def settings(kafka_bootstrap: str, topic_prefix: str) -> Settings:
    """Kafka from the shared ``kafka_bootstrap`` fixture (``LEDGERFLOW_KAFKA_BOOTSTRAP``;
    skipped when unset); no database needed."""
    return Settings(
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=f"{topic_prefix}-exec",
        partitions=2,
        work_partitions=2,
    )


@pytest.fixture
async def producer(settings: Settings) -> AsyncIterator[EventProducer]:
    await ensure_topics(settings, queues=["default"])
    async with EventProducer(settings, source="tests/executor") as p:
        yield p


class Harness:
    def __init__(self, settings: Settings, producer: EventProducer) -> None:
        self.settings = settings
        self.producer = producer
        self.version_id = f"v-{uuid.uuid4().hex[:8]}"
        self.run_id = f"run-{uuid.uuid4().hex[:8]}"
        self.executor: asyncio.Task[None] | None = None

    async def publish_version(self, version_id: str | None = None) -> None:
        dag = _serialize(SOURCE, FILENAME)
        data = DagVersionPublished(
            dag_id=DAG_ID,
            version_id=version_id or self.version_id,
            dag=dag,
            source_code=SOURCE,
            filename=FILENAME,
        )
        env = make_envelope(
            data,
            id=deterministic_id("DagVersionPublished", data.version_id),
            source="tests/executor",
            time=datetime.now(UTC),
            aggregate_key=DAG_ID,
        )
        await self.producer.send(self.settings.topics.dags, env)

    async def work(
        self, task_id: str, *, try_number: int = 1, version_id: str | None = None, **extra: Any
    ) -> Envelope:
        item = RunTaskAttempt(
            dag_id=DAG_ID,
            run_id=self.run_id,
            task_id=task_id,
            try_number=try_number,
            version_id=version_id or self.version_id,
            queue="default",
            **extra,
        )
        env = make_envelope(
            item,
            id=deterministic_id("RunTaskAttempt", DAG_ID, self.run_id, task_id, -1, try_number),
            source="tests/executor",
            time=datetime.now(UTC),
            aggregate_key=DAG_ID,
            correlation_id=self.run_id,
        )
        key = attempt_key(DAG_ID, self.run_id, task_id, -1, try_number)
        await self.producer.send(self.settings.topics.work("default"), env, key=key)
        return env

    def start_executor(self, **options: Any) -> None:
        options.setdefault("shutdown_grace", 2.0)
        options.setdefault("version_timeout", 5.0)
        self.executor = asyncio.create_task(service.run(self.settings, **options))

    async def stop_executor(self) -> None:
        if self.executor is not None:
            self.executor.cancel()
            try:
                await asyncio.wait_for(self.executor, 30)
            except asyncio.CancelledError:
                pass
            self.executor = None


@pytest.fixture
async def h(settings: Settings, producer: EventProducer) -> AsyncIterator[Harness]:
    harness = Harness(settings, producer)
    yield harness
    await harness.stop_executor()


async def read_topic(
    settings: Settings,
    topic: str,
    until: Callable[[list[Any]], bool],
    *,
    timeout: float = 30.0,  # noqa: ASYNC109
    raw: bool = False,
) -> list[Any]:
    """Read ``topic`` from the beginning until ``until(messages)`` holds."""
    parts = await topic_partitions(settings.kafka_bootstrap, topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in parts]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen: list[Any] = []
        deadline = time.monotonic() + timeout
        while not until(seen):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out reading {topic}; got {seen!r}")
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for r in records:
                    seen.append(r if raw else decode_record(r))
        return seen
    finally:
        await consumer.stop()


async def topic_partitions(bootstrap: str, topic: str) -> list[int]:
    """The partition ids of ``topic`` (asked of the admin client: a consumer's metadata
    only covers the topics it subscribed to)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        async with asyncio.timeout(10):
            while True:
                described = await admin.describe_topics([topic])
                parts = sorted(
                    p["partition"]
                    for d in described
                    if d.get("error_code") == 0
                    for p in d.get("partitions", ())
                )
                if parts:
                    return parts
                await asyncio.sleep(0.1)
    finally:
        await admin.close()


def reports_for(events: list[Envelope], task_id: str) -> list[Envelope]:
    return [e for e in events if getattr(e.data, "task_id", None) == task_id]


def finished(*task_ids: str) -> Callable[[list[Envelope]], bool]:
    def check(events: list[Envelope]) -> bool:
        done = {
            e.data.task_id
            for e in events
            if e.data.type in ("TaskAttemptSucceeded", "TaskAttemptFailed")
        }
        return set(task_ids) <= done

    return check


def log_lines(chunks: list[Envelope], task_id: str, try_number: int = 1) -> list[Any]:
    mine = [c.data for c in chunks if c.data.task_id == task_id and c.data.try_number == try_number]
    mine.sort(key=lambda c: c.chunk)
    assert [c.chunk for c in mine] == list(range(len(mine))), "chunks numbered 0,1,2,..."
    return [line for c in mine for line in c.lines]


async def committed_total(settings: Settings) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        group = service.group_id_for(settings, "default")
        offsets = await admin.list_consumer_group_offsets(group)
        topic = settings.topics.work("default")
        return sum(m.offset for tp, m in offsets.items() if tp.topic == topic and m.offset > 0)
    finally:
        await admin.close()


async def wait_committed(settings: Settings, n: int, timeout: float = 15.0) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    got = -1
    while time.monotonic() < deadline:
        got = await committed_total(settings)
        if got >= n:
            assert got == n
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"committed {got} work items, expected {n}")


# ---------------------------------------------------------------------------- tests
async def test_runs_attempts_reports_and_streams_logs(h: Harness) -> None:
    await h.publish_version()
    hello = await h.work("hello", try_number=2)
    await h.work("bash")
    h.start_executor()

    events = await read_topic(h.settings, h.settings.topics.runs, finished("hello", "bash"))
    hello_reports = reports_for(events, "hello")
    assert [e.data.type for e in hello_reports] == ["TaskAttemptStarted", "TaskAttemptSucceeded"]
    started, succeeded = hello_reports
    assert started.data.try_number == succeeded.data.try_number == 2
    assert started.data.pid and started.data.hostname and started.data.executor_id
    assert succeeded.data.return_value == {"n": 5}
    assert succeeded.data.end_date >= started.data.start_date
    assert started.source == "ledgerflow/executor"
    assert started.aggregate_key == "exec_demo" and started.correlation_id == h.run_id
    assert started.causation_id == hello.id
    assert started.id == deterministic_id("TaskAttemptStarted", DAG_ID, h.run_id, "hello", -1, 2)
    assert [e.data.type for e in reports_for(events, "bash")] == [
        "TaskAttemptStarted",
        "TaskAttemptSucceeded",
    ]

    def have_logs(chunks: list[Envelope]) -> bool:
        texts = [ln.text for c in chunks for ln in c.data.lines]
        return "line 4" in texts and "three" in texts

    chunks = await read_topic(h.settings, h.settings.topics.logs, have_logs)
    lines = log_lines(chunks, "hello", 2)
    assert [ln.text for ln in lines if ln.stream == "stdout"] == [f"line {i}" for i in range(5)]
    assert lines[0].stream == "system" and "started" in lines[0].text
    bash = log_lines(chunks, "bash")
    # The BashOperator relays the command's stderr into its own output, as Airflow's does.
    assert [ln.text for ln in bash if ln.text in ("one", "two", "three")] == ["one", "two", "three"]
    key = attempt_key(DAG_ID, h.run_id, "hello", -1, 2)
    raw = await read_topic(
        h.settings, h.settings.topics.logs, lambda rs: len(rs) >= len(chunks), raw=True
    )
    assert key.encode() in {r.key for r in raw}

    await wait_committed(h.settings, 2)


async def test_timeout_fails_the_attempt(h: Harness) -> None:
    await h.publish_version()
    await h.work("sleepy", execution_timeout_seconds=1.0)
    h.start_executor()
    t0 = time.monotonic()
    events = await read_topic(h.settings, h.settings.topics.runs, finished("sleepy"))
    failed = reports_for(events, "sleepy")[-1].data
    assert failed.type == "TaskAttemptFailed"
    assert "timed out" in failed.error and "execution_timeout" in failed.error
    assert failed.retryable
    assert time.monotonic() - t0 < 20
    await wait_committed(h.settings, 1)


async def test_crash_fails_with_exit_code_and_the_next_item_runs(h: Harness) -> None:
    await h.publish_version()
    await h.work("crash")
    await h.work("hello")
    h.start_executor(slots=1)
    events = await read_topic(h.settings, h.settings.topics.runs, finished("crash", "hello"))
    crash = reports_for(events, "crash")[-1].data
    assert crash.type == "TaskAttemptFailed"
    assert crash.error == "process exited with code 3"
    assert reports_for(events, "hello")[-1].data.type == "TaskAttemptSucceeded"
    await wait_committed(h.settings, 2)


async def test_malformed_work_item_goes_to_dlq_and_next_runs(h: Harness) -> None:
    await h.publish_version()
    raw = AIOKafkaProducer(bootstrap_servers=h.settings.kafka_bootstrap)
    await raw.start()
    try:
        # Same key as the next item, so both land on one partition, poison first.
        key = attempt_key(DAG_ID, h.run_id, "hello", -1, 1).encode()
        await raw.send_and_wait(h.settings.topics.work("default"), b"{not json", key=key)
    finally:
        await raw.stop()
    await h.work("hello")
    h.start_executor()
    events = await read_topic(h.settings, h.settings.topics.runs, finished("hello"))
    assert reports_for(events, "hello")[-1].data.type == "TaskAttemptSucceeded"
    dead = await read_topic(
        h.settings, h.settings.topics.dead_letters, lambda rs: len(rs) >= 1, raw=True
    )
    assert dead[0].value == b"{not json"
    headers = dict(dead[0].headers)
    assert b"not JSON" in headers["ledgerflow-dlq-reason"]
    assert (
        headers["ledgerflow-dlq-consumer"] == service.group_id_for(h.settings, "default").encode()
    )
    await wait_committed(h.settings, 2)


async def test_unknown_version_fails_not_retryable(h: Harness) -> None:
    await h.work("hello", version_id="no-such-version")
    h.start_executor(version_timeout=1.0)
    events = await read_topic(h.settings, h.settings.topics.runs, finished("hello"))
    failed = reports_for(events, "hello")[-1].data
    assert failed.type == "TaskAttemptFailed" and not failed.retryable
    assert "no-such-version" in failed.error and "unknown" in failed.error
    await wait_committed(h.settings, 1)


async def test_work_item_waits_for_a_version_published_after_it(h: Harness) -> None:
    await h.work("hello")
    h.start_executor(version_timeout=20.0)
    await asyncio.sleep(1.0)
    await h.publish_version()
    events = await read_topic(h.settings, h.settings.topics.runs, finished("hello"))
    assert reports_for(events, "hello")[-1].data.type == "TaskAttemptSucceeded"


async def test_redelivered_duplicate_runs_once(h: Harness) -> None:
    await h.publish_version()
    await h.work("hello")
    await h.work("hello")  # the same attempt again (e.g. a scheduler resend)
    await h.work("bash")
    h.start_executor(slots=1)
    events = await read_topic(h.settings, h.settings.topics.runs, finished("hello", "bash"))
    await asyncio.sleep(1.0)
    events = await read_topic(h.settings, h.settings.topics.runs, lambda es: len(es) >= len(events))
    assert [e.data.type for e in reports_for(events, "hello")] == [
        "TaskAttemptStarted",
        "TaskAttemptSucceeded",
    ]
    await wait_committed(h.settings, 3)


async def test_log_cap_is_stated_and_the_rest_dropped(h: Harness) -> None:
    await h.publish_version()
    await h.work("chatty")
    h.start_executor(log_cap_bytes=50_000)
    await read_topic(h.settings, h.settings.topics.runs, finished("chatty"))

    def capped(chunks: list[Envelope]) -> bool:
        return any("dropped" in ln.text for c in chunks for ln in c.data.lines)

    chunks = await read_topic(h.settings, h.settings.topics.logs, capped)
    lines = log_lines(chunks, "chatty")
    stdout = [ln.text for ln in lines if ln.stream == "stdout"]
    assert 0 < len(stdout) < 2000
    assert stdout == [f"chatter {i:05d} " + "x" * 100 for i in range(len(stdout))]
    system = [ln.text for ln in lines if ln.stream == "system"]
    assert any("cap of 50000 bytes" in t for t in system)


async def test_shutdown_kills_after_grace_reports_and_commits(h: Harness) -> None:
    await h.publish_version()
    await h.work("sleepy")
    h.start_executor(shutdown_grace=1.0)

    def running(events: list[Envelope]) -> bool:
        return any(e.data.type == "TaskAttemptStarted" for e in events)

    await read_topic(h.settings, h.settings.topics.runs, running)
    t0 = time.monotonic()
    await h.stop_executor()
    assert time.monotonic() - t0 < 15
    events = await read_topic(h.settings, h.settings.topics.runs, finished("sleepy"))
    failed = reports_for(events, "sleepy")[-1].data
    assert failed.type == "TaskAttemptFailed" and "shut down" in failed.error
    await wait_committed(h.settings, 1)


async def test_stop_twice_is_harmless(settings: Settings, producer: EventProducer) -> None:
    executor = service.Executor(settings, queue="default", slots=1)
    await executor.start()
    await executor.stop()
    await executor.stop()
