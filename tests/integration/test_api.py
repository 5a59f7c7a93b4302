"""The API against real Kafka and Postgres: auth, DAG files, triggers, reads, health.

The API runs in-process (ASGI transport, with its real lifespan); the projector runs
against the same database; the scheduler's part is played by hand-made events.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from ledgerflow.api import db
from ledgerflow.api.app import create_app
from ledgerflow.api.health import HealthProbe
from ledgerflow.api.projector import Projector
from ledgerflow.api.server import serve
from ledgerflow.common import events as ev
from ledgerflow.common.kafka_io import EventProducer, consumer_config, ensure_topics
from ledgerflow.common.settings import Settings
from ledgerflow.common.topics import attempt_key

pytestmark = pytest.mark.integration

KAFKA = os.environ.get("LEDGERFLOW_KAFKA_BOOTSTRAP", "127.0.0.1:29092")
DATABASE = os.environ.get(
    "LEDGERFLOW_DATABASE_URL", "postgresql://ledgerflow@127.0.0.1:25432/ledgerflow"
)
PASSWORD = "s3cret"

HELLO = """\
from ledgerflow.sdk import DAG, task, BashOperator

with DAG("hello_api", tags=["example"], description="says hello"):
    @task
    def greet():
        return "hello"

    greet() >> BashOperator(task_id="done", bash_command="echo done")
"""
BROKEN = "from ledgerflow.sdk import DAG\n\nwith DAG('broken'):\n    x = (\n"


@pytest.fixture
async def settings() -> AsyncIterator[Settings]:
    name = f"lf_test_api_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(DATABASE)
    await admin.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = DATABASE.rpartition("/")
    s = Settings(
        kafka_bootstrap=KAFKA,
        database_url=f"{base}/{name}",
        topic_prefix=f"dev-api-http-{uuid.uuid4().hex[:8]}",
        partitions=2,
        work_partitions=2,
        admin_password=PASSWORD,
        health_max_projection_lag=0,
    )
    await ensure_topics(s)
    try:
        yield s
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def anon(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield client


@pytest.fixture
async def client(anon: httpx.AsyncClient) -> httpx.AsyncClient:
    response = await anon.post("/auth/token", json={"username": "admin", "password": PASSWORD})
    assert response.status_code == 201, response.text
    anon.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
    return anon


async def project(settings: Settings) -> None:
    async with Projector(settings) as projector:
        await projector.catch_up(within_s=30)


async def read_topic(settings: Settings, topic: str, count: int) -> list[Any]:
    """The first ``count`` records of ``topic`` (all partitions)."""
    consumer = AIOKafkaConsumer(**consumer_config(settings))
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(settings.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        got: list[Any] = []
        async with asyncio.timeout(10):
            while len(got) < count:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    got += records
        return got
    finally:
        await consumer.stop()


async def topic_size(settings: Settings, topic: str) -> int:
    consumer = AIOKafkaConsumer(**consumer_config(settings))
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(settings.partitions)]
        return sum((await consumer.end_offsets(tps)).values())
    finally:
        await consumer.stop()


async def submit_hello(settings: Settings, client: httpx.AsyncClient) -> str:
    response = await client.post(
        "/api/v2/dagFiles", json={"filename": "hello.py", "content": HELLO}
    )
    assert response.status_code == 201, response.text
    [published] = response.json()["dags"]
    await project(settings)
    return str(published["version_id"])


# --------------------------------------------------------------------------- auth


async def test_every_api_route_needs_a_token(anon: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/api/v2/dags"),
        ("POST", "/api/v2/dagFiles"),
        ("GET", "/api/v2/dags/x/dagRuns"),
        ("PATCH", "/api/v2/dags/x"),
    ]:
        response = await anon.request(method, path)
        assert response.status_code == 401, (method, path)
        assert response.json()["detail"] == "Not authenticated"
    response = await anon.get("/api/v2/dags", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401 and response.json()["detail"].startswith("Invalid token")


async def test_token_flow(anon: httpx.AsyncClient) -> None:
    bad = await anon.post("/auth/token", json={"username": "admin", "password": "wrong"})
    assert bad.status_code == 401 and bad.json()["detail"] == "Invalid username or password"
    missing = await anon.post("/auth/token", json={"username": "admin"})
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["body", "password"]
    good = await anon.post("/auth/token", json={"username": "admin", "password": PASSWORD})
    assert good.json()["token_type"] == "bearer"
    token = good.json()["access_token"]
    response = await anon.get("/api/v2/dags", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code in (200, 503)  # authenticated (503: no projection yet)


# --------------------------------------------------------------------------- DAG files


async def test_dag_file_is_published_as_a_version(
    settings: Settings, client: httpx.AsyncClient
) -> None:
    response = await client.post(
        "/api/v2/dagFiles", json={"filename": "hello.py", "content": HELLO}
    )
    assert response.status_code == 201, response.text
    [dag] = response.json()["dags"]
    assert dag["dag_id"] == "hello_api" and len(dag["version_id"]) == 20

    # The same file as multipart: same version id (content hash).
    response = await client.post("/api/v2/dagFiles", files={"file": ("hello.py", HELLO.encode())})
    assert response.status_code == 201, response.text
    assert response.json()["dags"] == [dag]

    records = await read_topic(settings, settings.topics.dags, 2)
    envelopes = [ev.decode(r.value) for r in records]
    assert {e.id for e in envelopes} == {
        ev.deterministic_id("DagVersionPublished", dag["version_id"])
    }
    published = envelopes[0].data
    assert isinstance(published, ev.DagVersionPublished)
    assert (published.version_id, published.source_code, published.submitted_by) == (
        dag["version_id"],
        HELLO,
        "admin",
    )
    assert records[0].key == b"hello_api"

    await project(settings)
    got = (await client.get("/api/v2/dags/hello_api")).json()
    assert got["latest_version_id"] == dag["version_id"] and got["latest_version_number"] == 1
    assert got["tags"] == [{"name": "example", "dag_id": "hello_api"}]
    assert got["description"] == "says hello" and got["is_paused"] is False
    listing = (await client.get("/api/v2/dags")).json()
    assert listing["total_entries"] == 1 and listing["dags"][0]["dag_id"] == "hello_api"


async def test_bad_dag_file_is_422_and_publishes_nothing(
    settings: Settings, client: httpx.AsyncClient
) -> None:
    response = await client.post(
        "/api/v2/dagFiles", json={"filename": "broken.py", "content": BROKEN}
    )
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail["kind"] == "syntax" and detail["filename"] == "broken.py"
    assert isinstance(detail["lineno"], int) and detail["message"]
    # No DAG version: only the import error (GET /api/v2/importErrors) is published.
    [record] = await read_topic(settings, settings.topics.dags, 1)
    assert b"DagFileImportFailed" in record.value
    assert await topic_size(settings, settings.topics.dags) == 1

    no_content = await client.post("/api/v2/dagFiles", json={"filename": "x.py"})
    assert no_content.status_code == 422
    assert no_content.json()["detail"][0]["loc"] == ["body", "content"]
    no_file = await client.post("/api/v2/dagFiles", files={"other": ("x.py", b"")})
    assert no_file.status_code == 422 and no_file.json()["detail"][0]["loc"] == ["body", "file"]


# --------------------------------------------------------------------------- triggering and reading


async def test_trigger_publishes_a_command_and_reads_come_from_the_projection(
    settings: Settings, client: httpx.AsyncClient
) -> None:
    assert (await client.post("/api/v2/dags/hello_api/dagRuns", json={})).status_code in (404, 503)
    version_id = await submit_hello(settings, client)

    unknown = await client.post("/api/v2/dags/nope/dagRuns", json={})
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == "The DAG with dag_id: `nope` was not found"
    bad_conf = await client.post("/api/v2/dags/hello_api/dagRuns", json={"conf": [1]})
    assert bad_conf.status_code == 422 and bad_conf.json()["detail"][0]["loc"] == ["body", "conf"]

    response = await client.post("/api/v2/dags/hello_api/dagRuns", json={"conf": {"n": 1}})
    assert response.status_code == 200, response.text
    run = response.json()
    run_id = run["dag_run_id"]
    assert run_id.startswith("manual__") and run["state"] == "queued"
    assert run["dag_version_id"] == version_id and run["conf"] == {"n": 1}
    queued_at = datetime.fromisoformat(run["queued_at"])
    assert run["queued_at"].endswith("+00:00") and len(run["queued_at"]) == 32
    assert abs(datetime.now(UTC) - queued_at) < timedelta(seconds=30)

    [record] = await read_topic(settings, settings.topics.commands, 1)
    command = ev.decode(record.value)
    assert record.key == b"hello_api"
    assert isinstance(command.data, ev.TriggerDagRun)
    assert (command.data.run_id, command.data.conf, command.data.triggered_by) == (
        run_id,
        {"n": 1},
        "admin",
    )

    # Play the scheduler and executor: the run is queued, `greet` runs and logs.
    t0 = datetime(2026, 11, 24, 1, 2, 3, 123, tzinfo=UTC)
    ref = dict(dag_id="hello_api", run_id=run_id)
    facts: list[Any] = [
        ev.DagRunQueued(**ref, version_id=version_id, conf={"n": 1}, queued_at=t0),
        ev.DagRunStarted(**ref, start_date=t0),
        ev.TaskInstanceQueued(
            **ref, task_id="greet", try_number=1, queue="default", queued_when=t0
        ),
        ev.TaskAttemptStarted(
            **ref,
            task_id="greet",
            try_number=1,
            start_date=t0 + timedelta(seconds=1),
            hostname="worker-1",
            executor_id="e1",
        ),
    ]
    async with EventProducer(settings, source="tests/api") as producer:
        for i, fact in enumerate(facts):
            await producer.send(
                settings.topics.runs,
                ev.make_envelope(
                    fact,
                    id=str(uuid.uuid4()),
                    source="tests/api",
                    time=t0,
                    aggregate_key="hello_api",
                    sequence=i + 1,
                ),
            )
        line = ev.LogLine(ts=t0, stream="stdout", text="hello from greet")
        chunk = ev.TaskLogChunk(**ref, task_id="greet", try_number=1, chunk=0, lines=(line,))
        await producer.send(
            settings.topics.logs,
            ev.make_envelope(
                chunk,
                id=str(uuid.uuid4()),
                source="tests/api",
                time=t0,
                aggregate_key=attempt_key("hello_api", run_id, "greet", -1, 1),
            ),
        )
    await project(settings)

    again = await client.post("/api/v2/dags/hello_api/dagRuns", json={"dag_run_id": run_id})
    assert again.status_code == 409

    runs = (await client.get("/api/v2/dags/hello_api/dagRuns")).json()
    assert runs["total_entries"] == 1 and runs["dag_runs"][0]["state"] == "running"
    assert (await client.get("/api/v2/dags/~/dagRuns")).json()["total_entries"] == 1
    got = (await client.get(f"/api/v2/dags/hello_api/dagRuns/{run_id}")).json()
    assert got["start_date"] == "2026-11-24T01:02:03.000123+00:00"
    assert got["dag_version_id"] == version_id
    missing = await client.get("/api/v2/dags/hello_api/dagRuns/nope")
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]

    tis = (await client.get(f"/api/v2/dags/hello_api/dagRuns/{run_id}/taskInstances")).json()
    by_id = {ti["task_id"]: ti for ti in tis["task_instances"]}
    assert tis["total_entries"] == 2 and set(by_id) == {"greet", "done"}
    greet = by_id["greet"]
    assert (greet["state"], greet["try_number"], greet["hostname"]) == ("running", 1, "worker-1")
    assert greet["start_date"] == "2026-11-24T01:02:04.000123+00:00"
    assert greet["queued_when"] == "2026-11-24T01:02:03.000123+00:00"
    assert (by_id["done"]["state"], by_id["done"]["operator"]) == (None, "BashOperator")

    logs = await client.get(f"/api/v2/dags/hello_api/dagRuns/{run_id}/taskInstances/greet/logs/1")
    assert logs.json()["content"] == [
        {
            "timestamp": "2026-11-24T01:02:03.000123+00:00",
            "event": "hello from greet",
            "stream": "stdout",
        }
    ]
    assert logs.json()["continuation_token"]  # the attempt runs: more lines may come
    text = await client.get(
        f"/api/v2/dags/hello_api/dagRuns/{run_id}/taskInstances/greet/logs/1",
        headers={"Accept": "text/plain"},
    )
    assert text.text == "hello from greet\n"


async def test_patch_publishes_set_dag_paused(
    settings: Settings, client: httpx.AsyncClient
) -> None:
    await submit_hello(settings, client)
    response = await client.patch("/api/v2/dags/hello_api", json={"is_paused": True})
    assert response.status_code == 200 and response.json()["is_paused"] is True
    [record] = await read_topic(settings, settings.topics.commands, 1)
    command = ev.decode(record.value).data
    assert isinstance(command, ev.SetDagPaused)
    assert (command.dag_id, command.is_paused, command.requested_by) == ("hello_api", True, "admin")
    assert (await client.patch("/api/v2/dags/nope", json={"is_paused": True})).status_code == 404
    invalid = await client.patch("/api/v2/dags/hello_api", json={})
    assert invalid.status_code == 422 and invalid.json()["detail"][0]["loc"] == [
        "body",
        "is_paused",
    ]


# --------------------------------------------------------------------------- health and OpenAPI


async def test_health_needs_a_caught_up_projection(
    settings: Settings, anon: httpx.AsyncClient
) -> None:
    before = await anon.get("/health")
    assert before.status_code == 503
    assert before.json()["status"] == "unhealthy" and before.json()["reasons"]

    await project(settings)
    healthy = await anon.get("/health")
    assert healthy.status_code == 200, healthy.text
    assert healthy.json()["status"] == "healthy" and healthy.json()["projection"]["lag"] == 0

    async with EventProducer(settings, source="tests/api") as producer:
        await producer.send(
            settings.topics.runs,
            ev.make_envelope(
                ev.DagPauseChanged(dag_id="x", is_paused=True),
                id=str(uuid.uuid4()),
                source="tests/api",
                time=datetime.now(UTC),
                aggregate_key="x",
            ),
        )
    behind = await anon.get("/health")
    assert behind.status_code == 503
    assert any("behind" in reason for reason in behind.json()["reasons"])

    await project(settings)
    assert (await anon.get("/health")).status_code == 200


async def test_health_reports_kafka_unreachable(settings: Settings) -> None:
    await project(settings)
    probe = HealthProbe(settings.model_copy(update={"kafka_bootstrap": "127.0.0.1:1"}))
    pool = await db.create_pool(settings.database_url)
    try:
        report = await probe.check(pool)
    finally:
        await probe.stop()
        await pool.close()
    assert report.status == "unhealthy" and report.kafka["status"] == "unhealthy"
    assert any("Kafka" in reason for reason in report.reasons)


async def test_openapi(anon: httpx.AsyncClient) -> None:
    spec = (await anon.get("/openapi.json")).json()
    assert "/api/v2/dags/{dag_id}/dagRuns" in spec["paths"]
    assert (
        "multipart/form-data" in spec["paths"]["/api/v2/dagFiles"]["post"]["requestBody"]["content"]
    )


async def test_serve_runs_uvicorn_until_cancelled(settings: Settings) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    task = asyncio.create_task(serve(settings.model_copy(update={"api_port": port})))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
            async with asyncio.timeout(20):
                while True:
                    try:
                        response = await c.get("/openapi.json")
                        break
                    except httpx.TransportError:
                        await asyncio.sleep(0.1)
            assert response.status_code == 200
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
