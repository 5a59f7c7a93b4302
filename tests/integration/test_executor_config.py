"""Variables and connections reach tasks, and their secrets never reach the log.

Config facts are published on the config topic as the API writes them (Fernet
ciphertext); the executor runs in-process with the real task runner. A task reads
``Variable.get`` / ``BaseHook.get_connection`` and prints what it got: the values are
right, and the log topic shows ``***`` for the password and the secret values.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from ledgerflow.common import events as ev
from ledgerflow.common.dagmodel import SerializedDag
from ledgerflow.common.kafka_io import EventProducer, decode_record, ensure_topics
from ledgerflow.common.secrets import Cipher, generate_key
from ledgerflow.common.settings import Settings
from ledgerflow.common.topics import attempt_key
from ledgerflow.executor import service

pytestmark = pytest.mark.integration

DAG_ID = "config_demo"
FILENAME = "dags/config_demo.py"
DB_PASSWORD = "hunter2-correct-horse"
TOKEN = "tok-5e4d3c2b1a"
API_KEY = "ak-9f8e7d6c5b4a"
SOURCE = """
import os

from ledgerflow.sdk import DAG, task
from ledgerflow.sdk.models import BaseHook, Variable

with DAG("config_demo", schedule=None):

    @task
    def use_config():
        conn = BaseHook.get_connection("warehouse")
        token = Variable.get("api_token_secret")
        print(f"region={Variable.get('region')}")
        print(f"gone={Variable.get('gone', default_var='missing')}")
        print(f"password={conn.password}")
        print(f"repr={conn.password!r}")
        print(f"token={token}")
        print(f"extra_key={conn.extra_dejson['api_key']}")
        print("fernet key visible:", "LEDGERFLOW_FERNET_KEY" in os.environ)
        return {
            "region": Variable.get("region"),
            "limits": Variable.get("limits", deserialize_json=True),
            "conn": [conn.conn_type, conn.host, conn.schema, conn.login, conn.port],
            "password_ok": conn.password == DB_PASSWORD,
            "token_ok": token == TOKEN,
        }

    use_config()
""".replace("DB_PASSWORD", repr(DB_PASSWORD)).replace("TOKEN", repr(TOKEN))


@pytest.fixture
async def settings(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> Settings:
    key = generate_key()
    # In the executor's environment too: the task's environment must not inherit it.
    monkeypatch.setenv("LEDGERFLOW_FERNET_KEY", key)
    s = make_settings(
        database_url="postgresql://unused/none", fernet_key=key, partitions=1, work_partitions=1
    )
    await ensure_topics(s, queues=["default"])
    return s


@pytest.fixture
async def producer(settings: Settings) -> AsyncIterator[EventProducer]:
    async with EventProducer(settings, source="tests/executor-config") as p:
        yield p


async def publish_config(settings: Settings, producer: EventProducer, data: Any, key: str) -> None:
    env = ev.make_envelope(
        data,
        id=str(uuid.uuid4()),
        source="ledgerflow/api",
        time=datetime.now(UTC),
        aggregate_key=key,
    )
    await producer.send(settings.topics.config, env)


async def publish_dag(settings: Settings, producer: EventProducer, version_id: str) -> None:
    from ledgerflow.sdk.parse import parse

    result = parse(SOURCE, FILENAME)
    assert result["ok"], result
    data = ev.DagVersionPublished(
        dag_id=DAG_ID,
        version_id=version_id,
        dag=SerializedDag.model_validate(result["dags"][0]),
        source_code=SOURCE,
        filename=FILENAME,
    )
    env = ev.make_envelope(
        data,
        id=ev.deterministic_id("DagVersionPublished", version_id),
        source="tests",
        time=datetime.now(UTC),
        aggregate_key=DAG_ID,
    )
    await producer.send(settings.topics.dags, env)


async def publish_work(
    settings: Settings, producer: EventProducer, version_id: str, run_id: str
) -> None:
    item = ev.RunTaskAttempt(
        dag_id=DAG_ID,
        run_id=run_id,
        task_id="use_config",
        try_number=1,
        version_id=version_id,
        queue="default",
    )
    env = ev.make_envelope(
        item,
        id=ev.deterministic_id("RunTaskAttempt", DAG_ID, run_id, "use_config", -1, 1),
        source="tests",
        time=datetime.now(UTC),
        aggregate_key=DAG_ID,
        correlation_id=run_id,
    )
    key = attempt_key(DAG_ID, run_id, "use_config", -1, 1)
    await producer.send(settings.topics.work("default"), env, key=key)


async def read_until(
    settings: Settings,
    topic: str,
    until: Callable[[list[Any]], bool],
    timeout: float = 60.0,  # noqa: ASYNC109
) -> list[Any]:
    """Raw records of ``topic`` (one partition) until ``until(records)`` holds."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        seen: list[Any] = []
        deadline = time.monotonic() + timeout
        while not until(seen):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out reading {topic}: {len(seen)} records")
            for records in (await consumer.getmany(timeout_ms=200)).values():
                seen += records
        return seen
    finally:
        await consumer.stop()


def _finished(records: list[Any]) -> bool:
    return any(
        decode_record(r).data.type in ("TaskAttemptSucceeded", "TaskAttemptFailed") for r in records
    )


async def test_task_reads_variables_and_connections_and_its_log_is_masked(
    settings: Settings, producer: EventProducer
) -> None:
    cipher = Cipher.from_settings(settings)
    version_id, run_id = f"v-{uuid.uuid4().hex[:8]}", f"run-{uuid.uuid4().hex[:8]}"
    await publish_dag(settings, producer, version_id)
    for var in (
        ev.VariableSet(key="region", value=cipher.encrypt("eu-west-1")),
        ev.VariableSet(key="api_token_secret", value=cipher.encrypt(TOKEN)),
        ev.VariableSet(key="gone", value=cipher.encrypt("x")),
    ):
        await publish_config(settings, producer, var, f"variable:{var.key}")
    await publish_config(settings, producer, ev.VariableDeleted(key="gone"), "variable:gone")
    await publish_config(
        settings,
        producer,
        ev.ConnectionSet(
            conn_id="warehouse",
            conn_type="postgres",
            host="db.internal",
            schema="analytics",
            login="etl",
            password=cipher.encrypt(DB_PASSWORD),
            port=5432,
            extra=cipher.encrypt(json.dumps({"sslmode": "require", "api_key": API_KEY})),
        ),
        "connection:warehouse",
    )

    executor = asyncio.create_task(
        service.run(settings, slots=1, shutdown_grace=2.0, version_timeout=10.0)
    )
    try:
        await asyncio.sleep(1.0)  # started: what comes next is streamed, not caught up
        limits = ev.VariableSet(key="limits", value=cipher.encrypt('{"max": 3}'))
        await publish_config(settings, producer, limits, "variable:limits")
        await asyncio.sleep(0.5)
        await publish_work(settings, producer, version_id, run_id)

        runs = await read_until(settings, settings.topics.runs, _finished)
        [final] = [
            decode_record(r).data
            for r in runs
            if decode_record(r).data.type in ("TaskAttemptSucceeded", "TaskAttemptFailed")
        ]
        assert final.type == "TaskAttemptSucceeded", getattr(final, "error", final)
        assert final.return_value == {
            "region": "eu-west-1",
            "limits": {"max": 3},
            "conn": ["postgres", "db.internal", "analytics", "etl", 5432],
            "password_ok": True,
            "token_ok": True,
        }

        def have_log(records: list[Any]) -> bool:
            return any(
                "attempt succeeded" in line.text
                for r in records
                for line in decode_record(r).data.lines
            )

        logs = await read_until(settings, settings.topics.logs, have_log)
    finally:
        executor.cancel()
        try:
            await asyncio.wait_for(executor, 30)
        except asyncio.CancelledError:
            pass

    texts = [line.text for r in logs for line in decode_record(r).data.lines]
    assert "region=eu-west-1" in texts
    assert "gone=missing" in texts  # set, then deleted
    assert "password=***" in texts
    assert "repr='***'" in texts
    assert "token=***" in texts
    assert "extra_key=***" in texts
    assert "fernet key visible: False" in texts
    raw = b"".join(r.value for r in logs)
    for secret in (DB_PASSWORD, TOKEN, API_KEY):
        assert secret.encode() not in raw
