"""Issue 5's remaining REST endpoints against real Kafka and Postgres: DAG versions and
sources, import errors, version and monitor, run filters and the batch list, task
instance tries, log continuation, bulk pause, deletion, and the problem shape of errors.

The API runs in-process; the projector is run to catch up by hand; the scheduler's and
executor's parts are played by hand-made events.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from ledgerflow.api.app import create_app
from ledgerflow.api.projector import Projector
from ledgerflow.common import events as ev
from ledgerflow.common.kafka_io import EventProducer, ensure_topics
from ledgerflow.common.settings import Settings
from ledgerflow.common.topics import attempt_key

pytestmark = pytest.mark.integration

PASSWORD = "s3cret"
T0 = datetime(2026, 11, 24, 1, 2, 3, 123, tzinfo=UTC)


def dag_file(dag_id: str, extra: str = "") -> str:
    return f"""\
from ledgerflow.sdk import DAG, task

with DAG("{dag_id}", tags=["catalog"]):
    @task
    def greet():
        return "hello"{extra}

    greet()
"""


@pytest.fixture
async def settings(make_settings: Callable[..., Settings]) -> Settings:
    s = make_settings(admin_password=PASSWORD, partitions=1, work_partitions=1)
    await ensure_topics(s)
    await project(s)
    return s


async def project(settings: Settings) -> None:
    async with Projector(settings) as projector:
        await projector.catch_up(within_s=30)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
            r = await c.post("/auth/token", json={"username": "admin", "password": PASSWORD})
            c.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
            yield c


async def submit(client: httpx.AsyncClient, filename: str, content: str) -> httpx.Response:
    return await client.post("/api/v2/dagFiles", json={"filename": filename, "content": content})


async def play(settings: Settings, dag_id: str, facts: list[Any]) -> None:
    """Publish run-log facts as the scheduler and executor would."""
    async with EventProducer(settings, source="tests/catalog") as producer:
        for i, fact in enumerate(facts):
            await producer.send(
                settings.topics.runs,
                ev.make_envelope(
                    fact,
                    id=str(uuid.uuid4()),
                    source="tests/catalog",
                    time=T0,
                    aggregate_key=dag_id,
                    sequence=i + 1,
                ),
            )


async def test_versions_sources_and_import_errors(
    settings: Settings, client: httpx.AsyncClient
) -> None:
    assert (await submit(client, "cat.py", dag_file("cat"))).status_code == 201
    await project(settings)
    assert (await submit(client, "cat.py", dag_file("cat", "\n    # v2"))).status_code == 201
    await project(settings)

    versions = (await client.get("/api/v2/dags/cat/dagVersions")).json()
    assert versions["total_entries"] == 2
    first, second = versions["dag_versions"]
    assert (first["version_number"], second["version_number"]) == (1, 2)
    assert set(first) == {
        "id", "version_number", "dag_id", "bundle_name", "bundle_version", "created_at",
        "dag_display_name", "bundle_url",
    }  # fmt: skip
    one = await client.get("/api/v2/dags/cat/dagVersions/1")
    assert one.status_code == 200 and one.json() == first
    assert (await client.get("/api/v2/dags/~/dagVersions")).json()["total_entries"] == 2
    missing = await client.get("/api/v2/dags/cat/dagVersions/9")
    assert missing.status_code == 404
    assert missing.json()["title"] == "Not Found" and missing.json()["status"] == 404

    latest = (await client.get("/api/v2/dagSources/cat")).json()
    assert latest["version_number"] == 2 and "# v2" in latest["content"]
    old = (await client.get("/api/v2/dagSources/cat", params={"version_number": 1})).json()
    assert old["version_number"] == 1 and "# v2" not in old["content"]
    text = await client.get("/api/v2/dagSources/cat", headers={"Accept": "text/plain"})
    assert text.headers["content-type"].startswith("text/plain") and "# v2" in text.text
    assert (await client.get("/api/v2/dagSources/nope")).status_code == 404

    broken = await submit(client, "broken.py", "from ledgerflow.sdk import DAG\nx = (\n")
    assert broken.status_code == 422 and broken.json()["detail"]["kind"] == "syntax"
    await project(settings)
    errors = (await client.get("/api/v2/importErrors")).json()
    assert errors["total_entries"] == 1
    [error] = errors["import_errors"]
    assert error["filename"] == "broken.py" and "broken.py" in error["stack_trace"]
    assert set(error) >= {"import_error_id", "timestamp", "filename", "bundle_name", "stack_trace"}
    got = await client.get(f"/api/v2/importErrors/{error['import_error_id']}")
    assert got.json() == error
    assert (await client.get("/api/v2/importErrors/999999")).status_code == 404
    assert (await submit(client, "broken.py", dag_file("fixed"))).status_code == 201
    await project(settings)
    assert (await client.get("/api/v2/importErrors")).json()["total_entries"] == 0


async def test_version_and_monitor_are_public(
    settings: Settings, client: httpx.AsyncClient
) -> None:
    anon = {"Authorization": ""}
    version = await client.get("/api/v2/version", headers=anon)
    assert version.status_code == 200 and set(version.json()) == {"version", "git_version"}
    health = await client.get("/api/v2/monitor/health", headers=anon)
    assert health.status_code == 200
    body = health.json()
    assert body["metadatabase"] == {"status": "healthy"}
    assert set(body["scheduler"]) == {"status", "latest_scheduler_heartbeat"}
    assert body["triggerer"] == {"status": None, "latest_triggerer_heartbeat": None}
    assert body["dag_processor"]["status"] == "healthy"


async def test_runs_tries_logs_and_filters(settings: Settings, client: httpx.AsyncClient) -> None:
    published = await submit(client, "runs.py", dag_file("runs"))
    version_id = published.json()["dags"][0]["version_id"]
    await project(settings)
    ref = {"dag_id": "runs", "run_id": "r1"}
    ti = {**ref, "task_id": "greet"}
    await play(
        settings,
        "runs",
        [
            ev.DagRunQueued(**ref, version_id=version_id, queued_at=T0, logical_date=T0),
            ev.DagRunStarted(**ref, start_date=T0),
            ev.TaskInstanceQueued(**ti, try_number=1, queue="default", queued_when=T0),
            ev.TaskAttemptStarted(**ti, try_number=1, start_date=T0, hostname="w1", executor_id="e"),
            ev.TaskAttemptFailed(**ti, try_number=1, end_date=T0, error="boom", executor_id="e"),
            ev.TaskInstanceUpForRetry(**ti, try_number=1, retry_at=T0),
            ev.TaskInstanceQueued(**ti, try_number=2, queue="default", queued_when=T0),
            ev.TaskAttemptStarted(**ti, try_number=2, start_date=T0, hostname="w2", executor_id="e"),
            ev.DagRunQueued(
                dag_id="runs", run_id="r2", version_id=version_id, queued_at=T0,
                logical_date=T0 + timedelta(days=1),
            ),
        ],
    )  # fmt: skip
    async with EventProducer(settings, source="tests/catalog") as producer:
        for chunk in range(2):
            line = ev.LogLine(ts=T0, stream="stdout", text=f"line {chunk}")
            data = ev.TaskLogChunk(**ti, try_number=2, chunk=chunk, lines=(line,))
            await producer.send(
                settings.topics.logs,
                ev.make_envelope(
                    data,
                    id=str(uuid.uuid4()),
                    source="tests/catalog",
                    time=T0,
                    aggregate_key=attempt_key("runs", "r1", "greet", -1, 2),
                ),
            )
    await project(settings)
    base = "/api/v2/dags/runs/dagRuns"

    tries = (await client.get(f"{base}/r1/taskInstances/greet/tries")).json()
    assert [t["try_number"] for t in tries["task_instances"]] == [1, 2]
    assert tries["task_instances"][0]["hostname"] == "w1"
    assert tries["task_instances"][0]["state"] == "failed"
    second = (await client.get(f"{base}/r1/taskInstances/greet/tries/2")).json()
    assert second["hostname"] == "w2" and second["dag_version"]["id"] == version_id
    assert (await client.get(f"{base}/r1/taskInstances/greet/-1/tries")).json() == tries
    assert (await client.get(f"{base}/r1/taskInstances/greet/tries/7")).status_code == 404
    assert (await client.get(f"{base}/r1/taskInstances/nope/tries")).status_code == 404

    logs = (await client.get(f"{base}/r1/taskInstances/greet/logs/2")).json()
    assert [c["event"] for c in logs["content"]] == ["line 0", "line 1"]
    token = logs["continuation_token"]
    assert token  # the attempt is running: more may come
    more = await client.get(f"{base}/r1/taskInstances/greet/logs/2", params={"token": token})
    assert more.json()["content"] == []
    full = await client.get(
        f"{base}/r1/taskInstances/greet/logs/2", params={"token": token, "full_content": True}
    )
    assert len(full.json()["content"]) == 2
    bad = await client.get(f"{base}/r1/taskInstances/greet/logs/2", params={"token": "%%"})
    assert bad.status_code == 400

    def ids(response: httpx.Response) -> list[str]:
        assert response.status_code == 200, response.text
        return [r["dag_run_id"] for r in response.json()["dag_runs"]]

    day2 = (T0 + timedelta(days=1)).isoformat()
    assert ids(await client.get(base, params={"logical_date_gte": day2})) == ["r2"]
    assert ids(await client.get(base, params={"state": "running"})) == ["r1"]
    assert ids(await client.get(base, params={"order_by": "-run_after"})) == ["r2", "r1"]
    assert ids(await client.get(base, params={"run_type": "manual", "order_by": "id"})) == [
        "r1",
        "r2",
    ]
    assert ids(await client.get(base, params={"start_date_gte": T0.isoformat()})) == ["r1"]
    assert (await client.get(base, params={"order_by": "nope"})).status_code == 422
    batch = await client.post(
        "/api/v2/dags/~/dagRuns/list",
        json={"dag_ids": ["runs"], "states": ["queued"], "logical_date_gte": day2},
    )
    assert ids(batch) == ["r2"]
    unknown = await client.post("/api/v2/dags/~/dagRuns/list", json={"order_by": "nope"})
    assert unknown.status_code == 400
    extra = await client.post("/api/v2/dags/~/dagRuns/list", json={"nope": 1})
    assert extra.status_code == 422 and extra.json()["detail"][0]["loc"] == ["body", "nope"]

    # Deleting a run (admin): gone from the projection, its history stays.
    deleted = await client.delete(f"{base}/r2")
    assert deleted.status_code == 204 and deleted.headers["Ledgerflow-Event-Position"]
    await project(settings)
    assert (await client.get(f"{base}/r2")).status_code == 404
    events = await client.get("/api/v2/eventLogs", params={"event": "DagRunDeleted"})
    assert events.json()["total_entries"] == 1


async def test_bulk_pause_and_delete_dag(settings: Settings, client: httpx.AsyncClient) -> None:
    for name in ("keep_a", "keep_b", "other"):
        assert (await submit(client, f"{name}.py", dag_file(name))).status_code == 201
    await project(settings)
    paused = await client.patch(
        "/api/v2/dags", params={"dag_id_pattern": "keep%"}, json={"is_paused": True}
    )
    assert paused.status_code == 200
    assert {d["dag_id"] for d in paused.json()["dags"]} == {"keep_a", "keep_b"}
    assert all(d["is_paused"] for d in paused.json()["dags"])
    mask = await client.patch(
        "/api/v2/dags/other", params={"update_mask": "tags"}, json={"is_paused": True}
    )
    assert mask.status_code == 400

    gone = await client.delete("/api/v2/dags/other")
    assert gone.status_code == 204
    await project(settings)
    assert (await client.get("/api/v2/dags/other")).status_code == 404
    assert (await client.get("/api/v2/dags/other/dagVersions")).status_code == 404
    assert (await client.get("/api/v2/dagSources/other")).status_code == 404
    assert (await client.delete("/api/v2/dags/other")).status_code == 404
    # Submitted again, the DAG is back (a new publication, not a dropped repeat).
    assert (await submit(client, "other.py", dag_file("other"))).status_code == 201
    await project(settings)
    back = await client.get("/api/v2/dags/other")
    assert back.status_code == 200, back.text
    assert (await client.get("/api/v2/dags/other/dagVersions")).json()["total_entries"] == 1


BAD_INPUTS: list[tuple[str, str, dict[str, Any], int, str | None]] = [
    # (method, path, request kwargs, status, the field a 422 names)
    ("GET", "/api/v2/dags", {"params": {"limit": "x"}}, 422, "limit"),
    ("GET", "/api/v2/dags", {"params": {"limit": 0}}, 422, "limit"),
    ("GET", "/api/v2/dags", {"params": {"offset": -1}}, 422, "offset"),
    ("GET", "/api/v2/dags/~/dagRuns", {"params": {"state": "weird"}}, 422, "state"),
    ("GET", "/api/v2/dags/~/dagRuns", {"params": {"logical_date_gte": "x"}}, 422, None),
    ("GET", "/api/v2/dags/x/dagVersions/abc", {}, 422, "version_number"),
    ("GET", "/api/v2/importErrors/-5", {}, 422, "import_error_id"),
    ("POST", "/api/v2/dags/x/dagRuns", {"json": {"conf": "no"}}, 422, "conf"),
    ("POST", "/api/v2/dags/x/dagRuns", {"content": b"{not json"}, 422, None),
    ("PATCH", "/api/v2/dags/x", {"json": {"is_paused": "maybe"}}, 422, "is_paused"),
    ("GET", "/api/v2/dags/nope", {}, 404, None),
    ("GET", "/api/v2/dags/nope/dagRuns/r", {}, 404, None),
    ("DELETE", "/api/v2/dags/nope", {}, 404, None),
    ("GET", "/api/v2/eventLogs", {"params": {"order_by": "nope"}}, 400, None),
]


async def test_bad_inputs_answer_problems(client: httpx.AsyncClient) -> None:
    for method, path, kwargs, code, field in BAD_INPUTS:
        response = await client.request(method, path, **kwargs)
        assert response.status_code == code, (method, path, kwargs, response.text)
        body = response.json()
        assert body["status"] == code and body["type"] == "about:blank" and body["title"]
        assert body["detail"], body
        if code == 422 and field is not None:
            assert any(e["loc"][-1] == field or field in e["loc"] for e in body["detail"]), body
    unauthenticated = await client.get("/api/v2/dags", headers={"Authorization": ""})
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["title"] == "Unauthorized"
    assert unauthenticated.headers["WWW-Authenticate"] == "Bearer"
