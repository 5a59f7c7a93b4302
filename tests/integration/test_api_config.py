"""Variables and connections through the API, against real Kafka and Postgres.

The API runs in-process (ASGI transport, real lifespan); the projector runs against the
same database between writes and reads. Secrets must be ciphertext in the Kafka events
and in Postgres, and no response may carry a password.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from ledgerflow.api import db
from ledgerflow.api.app import create_app
from ledgerflow.api.projector import Projector, rebuild_projection
from ledgerflow.common import events as ev
from ledgerflow.common.kafka_io import consumer_config, ensure_topics
from ledgerflow.common.secrets import Cipher, generate_key
from ledgerflow.common.settings import Settings

pytestmark = pytest.mark.integration

PASSWORD = "s3cret-admin"
DB_PASSWORD = "hunter2-correct-horse"
API_KEY = "ak-9f8e7d6c5b4a"


@pytest.fixture
async def settings(make_settings: Callable[..., Settings]) -> Settings:
    s = make_settings(
        admin_password=PASSWORD,
        fernet_key=generate_key(),
        partitions=1,
        work_partitions=1,
    )
    await ensure_topics(s)
    await project(s)  # creates the projection's tables
    return s


async def _client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            token = await client.post(
                "/auth/token", json={"username": "admin", "password": PASSWORD}
            )
            assert token.status_code == 201, token.text
            client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
            yield client


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for c in _client(settings):
        yield c


async def project(settings: Settings) -> None:
    async with Projector(settings) as projector:
        await projector.catch_up(within_s=30)


async def config_records(settings: Settings) -> list[Any]:
    """Every record on the config topic, raw."""
    consumer = AIOKafkaConsumer(**consumer_config(settings))
    await consumer.start()
    try:
        tp = TopicPartition(settings.topics.config, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        got: list[Any] = []
        async with asyncio.timeout(10):
            while len(got) < end:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    got += records
        return got
    finally:
        await consumer.stop()


async def fetch_rows(settings: Settings, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute(f"SET search_path TO {db.LIVE_SCHEMA}")
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


# --------------------------------------------------------------------------- variables


async def test_variable_lifecycle(settings: Settings, client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/api/v2/variables",
        json={"key": "region", "value": "eu-west-1", "description": "where we run"},
    )
    assert created.status_code == 201, created.text
    assert created.json() == {
        "key": "region",
        "value": "eu-west-1",
        "description": "where we run",
        "is_encrypted": True,
        "team_name": None,
        "is_secret": False,
    }
    assert created.headers["Ledgerflow-Event-Position"].startswith(settings.topics.config + ":0:")
    json_var = await client.post(
        "/api/v2/variables", json={"key": "limits", "value": {"max": 3, "tags": ["a"]}}
    )
    assert json_var.status_code == 201
    assert json.loads(json_var.json()["value"]) == {"max": 3, "tags": ["a"]}

    await project(settings)
    got = await client.get("/api/v2/variables/region")
    assert got.status_code == 200
    assert got.json()["value"] == "eu-west-1"

    listed = (await client.get("/api/v2/variables")).json()
    assert listed["total_entries"] == 2
    assert [v["key"] for v in listed["variables"]] == ["limits", "region"]
    page = (await client.get("/api/v2/variables", params={"limit": 1, "order_by": "-key"})).json()
    assert page["total_entries"] == 2 and [v["key"] for v in page["variables"]] == ["region"]
    found = (await client.get("/api/v2/variables", params={"variable_key_pattern": "REG"})).json()
    assert [v["key"] for v in found["variables"]] == ["region"]
    bad_order = await client.get("/api/v2/variables", params={"order_by": "nope"})
    assert bad_order.status_code == 400

    duplicate = await client.post("/api/v2/variables", json={"key": "region", "value": "x"})
    assert duplicate.status_code == 409
    assert duplicate.json()["detail"] == "The Variable with key: `region` already exists"

    # PATCH with update_mask: only the description changes, the value is kept.
    patched = await client.patch(
        "/api/v2/variables/region",
        params={"update_mask": ["description"]},
        json={"key": "region", "value": "ignored", "description": "moved"},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["value"] == "eu-west-1"
    assert patched.json()["description"] == "moved"
    mismatch = await client.patch("/api/v2/variables/region", json={"key": "other", "value": "v"})
    assert mismatch.status_code == 400
    missing = await client.patch("/api/v2/variables/nope", json={"key": "nope", "value": "v"})
    assert missing.status_code == 404
    invalid = await client.post("/api/v2/variables", json={"key": "no_value"})
    assert invalid.status_code == 422
    assert invalid.json()["detail"][0]["loc"] == ["body", "value"]

    await project(settings)
    assert (await client.get("/api/v2/variables/region")).json()["description"] == "moved"

    deleted = await client.delete("/api/v2/variables/region")
    assert deleted.status_code == 204
    await project(settings)
    gone = await client.get("/api/v2/variables/region")
    assert gone.status_code == 404
    assert gone.json()["detail"] == "The Variable with key: `region` was not found"
    assert (await client.delete("/api/v2/variables/region")).status_code == 404


async def test_sensitive_variables_are_shown_masked_and_stored_encrypted(
    settings: Settings, client: httpx.AsyncClient
) -> None:
    for body in (
        {"key": "db_password", "value": DB_PASSWORD},
        {"key": "plain_but_secret", "value": "quiet-value-123", "is_secret": True},
        {"key": "service", "value": {"url": "https://x", "api_key": API_KEY}},
    ):
        response = await client.post("/api/v2/variables", json=body)
        assert response.status_code == 201, response.text
        text = response.text
        assert DB_PASSWORD not in text and "quiet-value-123" not in text and API_KEY not in text
    await project(settings)

    values = {
        v["key"]: v["value"] for v in (await client.get("/api/v2/variables")).json()["variables"]
    }
    assert values["db_password"] == "***"
    assert values["plain_but_secret"] == "***"
    assert json.loads(values["service"]) == {"url": "https://x", "api_key": "***"}

    # Sending back what was read keeps the secret (Airflow's merge of redacted values).
    await client.patch(
        "/api/v2/variables/service",
        json={"key": "service", "value": values["service"], "description": "d"},
    )
    await project(settings)

    cipher = Cipher.from_settings(settings)
    rows = {r["key"]: r for r in await fetch_rows(settings, "SELECT * FROM variables")}
    for key, plain in (("db_password", DB_PASSWORD), ("plain_but_secret", "quiet-value-123")):
        assert plain not in rows[key]["val"]
        assert cipher.decrypt(rows[key]["val"]) == plain
    assert json.loads(cipher.decrypt(rows["service"]["val"]))["api_key"] == API_KEY

    raw = b"".join(r.value for r in await config_records(settings))
    for plain in (DB_PASSWORD, "quiet-value-123", API_KEY, "https://x"):
        assert plain.encode() not in raw
    stored_events = await fetch_rows(
        settings, "SELECT data::text AS d FROM events WHERE topic = $1", settings.topics.config
    )
    assert stored_events and all(DB_PASSWORD not in r["d"] for r in stored_events)


async def test_bulk_variables(settings: Settings, client: httpx.AsyncClient) -> None:
    await client.post("/api/v2/variables", json={"key": "a", "value": "1"})
    await project(settings)
    response = await client.patch(
        "/api/v2/variables",
        json={
            "actions": [
                {
                    "action": "create",
                    "entities": [{"key": "a", "value": "2"}, {"key": "b", "value": "3"}],
                    "action_on_existence": "skip",
                },
                {"action": "delete", "entities": ["a", "zzz"], "action_on_non_existence": "skip"},
            ]
        },
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "create": {"success": ["b"], "errors": []},
        "update": None,
        "delete": {"success": ["a"], "errors": []},
    }
    await project(settings)
    keys = [v["key"] for v in (await client.get("/api/v2/variables")).json()["variables"]]
    assert keys == ["b"]
    failing = await client.patch(
        "/api/v2/variables",
        json={"actions": [{"action": "create", "entities": [{"key": "b", "value": "x"}]}]},
    )
    assert failing.json()["create"]["errors"][0]["status_code"] == 409


async def test_a_retried_request_writes_one_fact(
    settings: Settings, client: httpx.AsyncClient
) -> None:
    """A client that retries (same ``X-Request-ID``, say after a lost response) produces
    the same event id, which every reader drops as a repeat."""
    headers = {"X-Request-ID": "req-1"}
    body = {"key": "k", "value": "v"}
    first = await client.post("/api/v2/variables", json=body, headers=headers)
    again = await client.post("/api/v2/variables", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.headers["Ledgerflow-Event-Id"] == again.headers["Ledgerflow-Event-Id"]
    other = await client.post("/api/v2/variables", json={"key": "k2", "value": "v"})
    assert other.headers["Ledgerflow-Event-Id"] != first.headers["Ledgerflow-Event-Id"]
    await project(settings)
    rows = await fetch_rows(
        settings, "SELECT count(*) AS n FROM events WHERE topic = $1", settings.topics.config
    )
    assert rows[0]["n"] == 2
    assert len(await config_records(settings)) == 3


# --------------------------------------------------------------------------- connections


async def test_connection_lifecycle_never_returns_the_password(
    settings: Settings, client: httpx.AsyncClient
) -> None:
    body = {
        "connection_id": "warehouse",
        "conn_type": "postgres",
        "host": "db.internal",
        "schema": "analytics",
        "login": "etl",
        "password": DB_PASSWORD,
        "port": 5432,
        "extra": json.dumps({"sslmode": "require", "api_key": API_KEY}),
        "description": "the warehouse",
    }
    created = await client.post("/api/v2/connections", json=body)
    assert created.status_code == 201, created.text
    assert DB_PASSWORD not in created.text and API_KEY not in created.text
    shown = created.json()
    assert shown["password"] == "***"
    assert shown["schema"] == "analytics"
    assert json.loads(shown["extra"]) == {"sslmode": "require", "api_key": "***"}
    await project(settings)

    got = await client.get("/api/v2/connections/warehouse")
    assert got.status_code == 200
    assert DB_PASSWORD not in got.text and API_KEY not in got.text
    assert got.json() == {
        "connection_id": "warehouse",
        "conn_type": "postgres",
        "description": "the warehouse",
        "host": "db.internal",
        "login": "etl",
        "schema": "analytics",
        "port": 5432,
        "password": "***",
        "extra": json.dumps({"sslmode": "require", "api_key": "***"}),
        "team_name": None,
    }
    listed = await client.get("/api/v2/connections")
    assert listed.json()["total_entries"] == 1
    assert DB_PASSWORD not in listed.text

    assert (await client.post("/api/v2/connections", json=body)).status_code == 409
    bad_id = await client.post("/api/v2/connections", json={**body, "connection_id": "a b"})
    assert bad_id.status_code == 422
    assert bad_id.json()["detail"][0]["loc"] == ["body", "connection_id"]
    bad_extra = await client.post(
        "/api/v2/connections", json={**body, "connection_id": "x", "extra": "[1]"}
    )
    assert bad_extra.status_code == 422

    # Round trip: send back what GET showed, with a new host. Secrets stay.
    edited = {**got.json(), "host": "db2.internal"}
    edited.pop("team_name")
    patched = await client.patch("/api/v2/connections/warehouse", json=edited)
    assert patched.status_code == 200, patched.text
    assert patched.json()["host"] == "db2.internal"
    await project(settings)

    cipher = Cipher.from_settings(settings)
    [row] = await fetch_rows(settings, "SELECT * FROM connections")
    assert row["host"] == "db2.internal"
    assert DB_PASSWORD not in row["password"] and API_KEY not in row["extra"]
    assert cipher.decrypt(row["password"]) == DB_PASSWORD
    assert json.loads(cipher.decrypt(row["extra"]))["api_key"] == API_KEY

    raw = b"".join(r.value for r in await config_records(settings))
    assert DB_PASSWORD.encode() not in raw and API_KEY.encode() not in raw
    decoded = [ev.decode(r.value).data for r in await config_records(settings)]
    assert [type(d).__name__ for d in decoded] == ["ConnectionSet", "ConnectionSet"]
    assert all(r.key == b"connection:warehouse" for r in await config_records(settings))

    tested = await client.post("/api/v2/connections/test", json=body)
    assert tested.status_code == 403

    assert (await client.delete("/api/v2/connections/warehouse")).status_code == 204
    await project(settings)
    assert (await client.get("/api/v2/connections/warehouse")).status_code == 404


async def test_rebuild_keeps_variables_and_connections(
    settings: Settings, client: httpx.AsyncClient
) -> None:
    await client.post("/api/v2/variables", json={"key": "v1", "value": "one"})
    await client.post(
        "/api/v2/connections",
        json={"connection_id": "c1", "conn_type": "http", "password": DB_PASSWORD},
    )
    await project(settings)
    await rebuild_projection(settings, within_s=60)
    assert (await client.get("/api/v2/variables/v1")).json()["value"] == "one"
    assert (await client.get("/api/v2/connections/c1")).json()["password"] == "***"


async def test_writes_without_a_fernet_key_fail_clearly(settings: Settings) -> None:
    keyless = settings.model_copy(update={"fernet_key": None})
    async for client in _client(keyless):
        response = await client.post("/api/v2/variables", json={"key": "k", "value": "v"})
        assert response.status_code == 500
        assert response.json()["detail"].startswith("LEDGERFLOW_FERNET_KEY is not set")
