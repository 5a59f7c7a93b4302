"""Every kind of attempt outcome through a real executor against Kafka (ADR 0006).

Two halves:

- a stand-in runner (a small ``python -c`` script speaking the runner protocol) checks
  the executor's side: the request it builds from the work item and the DAG version,
  and how each outcome line becomes ``TaskAttemptSucceeded`` / ``Skipped`` /
  ``Rescheduled`` / ``Failed`` on the run topic;
- the real ``python -m ledgerflow.sdk.runner`` checks the same through Airflow-style
  DAG code: ``AirflowSkipException``, a reschedule-mode sensor, ``xcom_push`` and a
  mapped task's index. Those need the SDK runtime of ADR 0006 and are skipped until
  it is installed (``ledgerflow.sdk.compat.airflow``).
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from ledgerflow.common.dagmodel import SerializedDag, SerializedTask
from ledgerflow.common.events import (
    DagVersionPublished,
    Envelope,
    RunTaskAttempt,
    XComEntry,
    deterministic_id,
    make_envelope,
)
from ledgerflow.common.kafka_io import EventProducer, decode_record, ensure_topics
from ledgerflow.common.settings import Settings
from ledgerflow.common.topics import attempt_key
from ledgerflow.executor import service

pytestmark = pytest.mark.integration

FINAL = (
    "TaskAttemptSucceeded",
    "TaskAttemptFailed",
    "TaskAttemptSkipped",
    "TaskAttemptRescheduled",
)
XCOM_LIMIT = 2048

STUB_RUNNER = r"""
import json, os, sys
req = json.load(sys.stdin)
task = req["task_id"]
echo = {k: req.get(k) for k in (
    "max_tries", "map_index", "map_length", "extra_files", "xcoms", "run_type", "conf",
    "data_interval_start", "data_interval_end", "logical_date", "xcom_max_bytes",
    "variables", "connections", "try_number", "upstream_xcoms", "filename")}
outcomes = {
    "ok": {"status": "success", "return_value": echo, "xcoms": {"rows": 3},
           "follow_task_ids": ["b"], "rendered_fields": {"cmd": "echo 1", "long": "x" * 9000}},
    "short": {"status": "success", "return_value": None, "short_circuit": "all"},
    "skip": {"status": "skipped", "reason": "nothing to do", "rendered_fields": {"f": 1}},
    "resched": {"status": "rescheduled", "reschedule_date": "2030-01-01T00:00:00+00:00"},
    "fail": {"status": "failed", "error": "ValueError: E", "error_type": "ValueError",
             "retryable": False, "rendered_fields": {"f": 2}},
    "big": {"status": "success", "return_value": "x", "xcoms": {"blob": "y" * 5000}},
    "naive": {"status": "rescheduled", "reschedule_date": "2030-01-01T00:00:00"},
}
print("stub ran", task)
os.write(3, (json.dumps(outcomes.get(task, {"status": "weird"})) + "\n").encode())
"""


@pytest.fixture
def settings(kafka_bootstrap: str, topic_prefix: str) -> Settings:
    return Settings(
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=f"{topic_prefix}-outcomes",
        partitions=2,
        work_partitions=2,
        xcom_max_bytes=XCOM_LIMIT,
    )


class Harness:
    """Publishes a DAG version and work items, runs an executor, reads the run topic."""

    def __init__(self, settings: Settings, producer: EventProducer) -> None:
        self.settings = settings
        self.producer = producer
        self.dag_id = "outcomes"
        self.version_id = f"v-{uuid.uuid4().hex[:8]}"
        self.run_id = f"run-{uuid.uuid4().hex[:8]}"
        self.executor: asyncio.Task[None] | None = None

    async def publish_version(
        self, dag: SerializedDag, source: str, extra_files: dict[str, str] | None = None
    ) -> None:
        data = DagVersionPublished(
            dag_id=self.dag_id,
            version_id=self.version_id,
            dag=dag,
            source_code=source,
            filename="outcomes.py",
            extra_files=extra_files or {},
        )
        env = make_envelope(
            data,
            id=deterministic_id("DagVersionPublished", self.version_id),
            source="tests/executor",
            time=datetime.now(UTC),
            aggregate_key=self.dag_id,
        )
        await self.producer.send(self.settings.topics.dags, env)

    async def work(self, task_id: str, *, map_index: int = -1, **extra: Any) -> None:
        item = RunTaskAttempt(
            dag_id=self.dag_id,
            run_id=self.run_id,
            task_id=task_id,
            map_index=map_index,
            try_number=1,
            version_id=self.version_id,
            queue="default",
            **extra,
        )
        env = make_envelope(
            item,
            id=deterministic_id("RunTaskAttempt", self.dag_id, self.run_id, task_id, map_index, 1),
            source="tests/executor",
            time=datetime.now(UTC),
            aggregate_key=self.dag_id,
            correlation_id=self.run_id,
        )
        key = attempt_key(self.dag_id, self.run_id, task_id, map_index, 1)
        await self.producer.send(self.settings.topics.work("default"), env, key=key)

    def start_executor(self, **options: Any) -> None:
        options.setdefault("shutdown_grace", 2.0)
        options.setdefault("version_timeout", 10.0)
        self.executor = asyncio.create_task(service.run(self.settings, **options))

    async def stop_executor(self) -> None:
        if self.executor is not None:
            self.executor.cancel()
            try:
                await asyncio.wait_for(self.executor, 30)
            except asyncio.CancelledError:
                pass
            self.executor = None

    async def final_reports(self, *keys: str | tuple[str, int]) -> dict[Any, Any]:
        """The final report of each attempt (task id, or (task id, map index)),
        waiting until all of them are on the run topic."""
        wanted = {k if isinstance(k, tuple) else (k, -1) for k in keys}
        topic = self.settings.topics.runs
        consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap, group_id=None)
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in range(self.settings.partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            found: dict[Any, Any] = {}
            deadline = time.monotonic() + 60
            while not wanted <= set(found):
                if time.monotonic() > deadline:
                    raise AssertionError(f"timed out; have {sorted(found)}, want {sorted(wanted)}")
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    for record in records:
                        env: Envelope = decode_record(record)
                        if env.data.type in FINAL:
                            found[(env.data.task_id, env.data.map_index)] = env.data
            return {k[0] if k[1] == -1 else k: v for k, v in found.items()}
        finally:
            await consumer.stop()


@pytest.fixture
async def h(settings: Settings) -> AsyncIterator[Harness]:
    await ensure_topics(settings, queues=["default"])
    async with EventProducer(settings, source="tests/executor") as producer:
        harness = Harness(settings, producer)
        yield harness
        await harness.stop_executor()


# ---------------------------------------------------------------------------- stand-in runner

STUB_TASKS = ("ok", "short", "skip", "resched", "fail", "big", "naive", "weird")


def stub_dag() -> SerializedDag:
    return SerializedDag(
        dag_id="outcomes",
        fileloc="outcomes.py",
        tasks=tuple(
            SerializedTask(
                task_id=name, operator="PythonOperator", retries=3 if name == "ok" else 0
            )
            for name in STUB_TASKS
        ),
    )


async def test_each_outcome_becomes_its_report(h: Harness) -> None:
    await h.publish_version(stub_dag(), "# stub", extra_files={"sql/q.sql": "select {{ ds }}"})
    start = datetime(2026, 11, 24, tzinfo=UTC)
    await h.work(
        "ok",
        map_index=2,
        map_length=5,
        conf={"a": 1},
        run_type="scheduled",
        logical_date=start,
        data_interval_start=start,
        data_interval_end=datetime(2026, 11, 25, tzinfo=UTC),
        xcoms=(
            XComEntry(task_id="up", value=[1, 2]),
            XComEntry(task_id="up", key="rows", value=2),
            XComEntry(task_id="fan", map_index=0, value="a"),
        ),
    )
    for name in STUB_TASKS[1:]:
        await h.work(name)
    h.start_executor(runner_argv=[sys.executable, "-c", STUB_RUNNER])
    reports = await h.final_reports(("ok", 2), *STUB_TASKS[1:])

    ok = reports[("ok", 2)]
    assert ok.type == "TaskAttemptSucceeded" and ok.map_index == 2
    request = ok.return_value
    assert request == {
        "max_tries": 4,
        "map_index": 2,
        "map_length": 5,
        "extra_files": {"sql/q.sql": "select {{ ds }}"},
        "xcoms": [
            {"task_id": "up", "map_index": -1, "key": "return_value", "value": [1, 2]},
            {"task_id": "up", "map_index": -1, "key": "rows", "value": 2},
            {"task_id": "fan", "map_index": 0, "key": "return_value", "value": "a"},
        ],
        "run_type": "scheduled",
        "conf": {"a": 1},
        "data_interval_start": "2026-11-24T00:00:00+00:00",
        "data_interval_end": "2026-11-25T00:00:00+00:00",
        "logical_date": "2026-11-24T00:00:00+00:00",
        "xcom_max_bytes": XCOM_LIMIT,
        "variables": {},
        "connections": {},
        "try_number": 1,
        "upstream_xcoms": {"up": [1, 2]},
        "filename": "outcomes.py",
    }
    assert ok.xcoms == {"rows": 3} and ok.follow_task_ids == ("b",) and ok.short_circuit is None
    assert ok.rendered_fields["cmd"] == "echo 1"
    assert ok.rendered_fields["long"].startswith("Truncated")
    assert len(ok.rendered_fields["long"]) == 4096

    assert reports["short"].type == "TaskAttemptSucceeded"
    assert reports["short"].short_circuit == "all" and reports["short"].follow_task_ids is None

    skip = reports["skip"]
    assert skip.type == "TaskAttemptSkipped"
    assert (skip.reason, skip.rendered_fields) == ("nothing to do", {"f": 1})

    resched = reports["resched"]
    assert resched.type == "TaskAttemptRescheduled"
    assert resched.reschedule_date == datetime(2030, 1, 1, tzinfo=UTC)

    fail = reports["fail"]
    assert fail.type == "TaskAttemptFailed"
    assert (fail.error, fail.error_type, fail.retryable, fail.rendered_fields) == (
        "ValueError: E",
        "ValueError",
        False,
        {"f": 2},
    )

    big = reports["big"]
    assert big.type == "TaskAttemptFailed" and big.error_type == "XComTooLarge"
    assert f"the limit is {XCOM_LIMIT} bytes" in big.error and not big.retryable

    for broken in ("naive", "weird"):
        assert reports[broken].type == "TaskAttemptFailed"
        assert reports[broken].error_type == "RunnerProtocolError"
    assert "UTC offset" in reports["naive"].error


# ---------------------------------------------------------------------------- real runner

AIRFLOW_SOURCE = """
from airflow.exceptions import AirflowSkipException
from airflow.providers.standard.sensors.python import PythonSensor
from airflow.sdk import DAG, task

with DAG("outcomes", schedule=None):

    @task
    def skipper():
        raise AirflowSkipException("nothing to do today")

    @task
    def pusher(**context):
        context["ti"].xcom_push(key="rows", value=3)
        context["ti"].xcom_push(key="names", value=["a", "b"])
        return "done"

    @task
    def make():
        return [10, 20, 30]

    @task
    def double(x):
        return x * 2

    wait = PythonSensor(
        task_id="wait", python_callable=lambda: False, mode="reschedule", poke_interval=30
    )
    skipper()
    pusher()
    double.expand(x=make())
"""


def _serialize_airflow_dag() -> SerializedDag:
    from ledgerflow.sdk.parse import parse

    result = parse(AIRFLOW_SOURCE, "outcomes.py")
    assert result["ok"], result
    return SerializedDag.model_validate(result["dags"][0])


async def test_airflow_style_tasks_report_each_outcome(h: Harness) -> None:
    await h.publish_version(_serialize_airflow_dag(), AIRFLOW_SOURCE)
    await h.work("skipper")
    await h.work("wait")
    await h.work("pusher")
    await h.work(
        "double",
        map_index=1,
        map_length=3,
        xcoms=(XComEntry(task_id="make", value=[10, 20, 30]),),
    )
    before = datetime.now(UTC)
    h.start_executor()
    reports = await h.final_reports("skipper", "wait", "pusher", ("double", 1))

    skipper = reports["skipper"]
    assert skipper.type == "TaskAttemptSkipped", skipper
    assert "nothing to do today" in (skipper.reason or "")

    wait = reports["wait"]
    assert wait.type == "TaskAttemptRescheduled", wait
    assert (wait.reschedule_date - before).total_seconds() >= 29

    pusher = reports["pusher"]
    assert pusher.type == "TaskAttemptSucceeded", pusher
    assert pusher.return_value == "done"
    assert pusher.xcoms == {"rows": 3, "names": ["a", "b"]}

    double = reports[("double", 1)]
    assert double.type == "TaskAttemptSucceeded", double
    assert double.return_value == 40
