# ruff: noqa: F811  (pytest fixtures imported from live_api are parameters here)
"""``GET /api/v2/events/stream``: server-sent events from Kafka, filters, resuming,
heartbeats. The API runs as a real uvicorn server (the stream never ends, so the test
reads it over a socket)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from ledgerflow.api.server import serve
from ledgerflow.common import events as ev
from ledgerflow.common.kafka_io import EventProducer
from ledgerflow.common.settings import Settings

from tests.integration.live_api import PASSWORD, background, settings  # noqa: F401

pytestmark = pytest.mark.integration


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    live = settings.model_copy(update={"api_host": "127.0.0.1", "api_port": port})
    async with background(serve(live)):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
            async with asyncio.timeout(30):
                while True:
                    with contextlib.suppress(httpx.TransportError):
                        r = await c.post(
                            "/auth/token", json={"username": "admin", "password": PASSWORD}
                        )
                        if r.status_code == 201:
                            break
                    await asyncio.sleep(0.1)
            c.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
            yield c


async def read_sse(
    response: httpx.Response, count: int, *, comments: list[str] | None = None
) -> list[dict[str, str]]:
    """The next ``count`` events of an SSE response (comments go to ``comments``)."""
    out: list[dict[str, str]] = []
    current: dict[str, str] = {}
    async with asyncio.timeout(20):
        async for line in response.aiter_lines():
            if line.startswith(":"):
                if comments is not None:
                    comments.append(line)
                    if count == 0 and "heartbeat" in line:
                        return out
                continue
            if not line:
                if current:
                    out.append(current)
                    current = {}
                    if len(out) == count:
                        return out
                continue
            field, _, value = line.partition(": ")
            current[field] = value
    return out


def envelope(payload: Any) -> ev.Envelope:
    return ev.make_envelope(
        payload,
        id=str(uuid.uuid4()),
        source="tests/stream",
        time=datetime.now(UTC),
        aggregate_key=payload.dag_id,
        correlation_id=getattr(payload, "run_id", None),
    )


def started(dag_id: str, run_id: str) -> ev.DagRunStarted:
    return ev.DagRunStarted(dag_id=dag_id, run_id=run_id, start_date=datetime.now(UTC))


async def test_stream_filters_and_resumes(settings: Settings, api: httpx.AsyncClient) -> None:
    sent = [
        envelope(started("d1", "r1")),
        envelope(started("d2", "r1")),  # another DAG: filtered out
        envelope(ev.DagRunSucceeded(dag_id="d1", run_id="r1", end_date=datetime.now(UTC))),
        envelope(started("d1", "r2")),
    ]
    async with EventProducer(settings, source="tests/stream") as producer:
        async with api.stream("GET", "/api/v2/events/stream", params={"dag_id": "d1"}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            for e in sent:
                await producer.send(settings.topics.runs, e)
            got = await read_sse(response, 3)
        assert [g["event"] for g in got] == [
            "io.ledgerflow.DagRunStarted",
            "io.ledgerflow.DagRunSucceeded",
            "io.ledgerflow.DagRunStarted",
        ]
        assert [ev.decode(g["data"].encode()).id for g in got] == [
            sent[0].id,
            sent[2].id,
            sent[3].id,
        ]

        # Resume after the first event: the rest again, not the first.
        async with api.stream(
            "GET",
            "/api/v2/events/stream",
            params={"dag_id": "d1"},
            headers={"Last-Event-ID": got[0]["id"]},
        ) as response:
            again = await read_sse(response, 2)
        assert [ev.decode(g["data"].encode()).id for g in again] == [sent[2].id, sent[3].id]

        # From the beginning, by type and run, with ?from=.
        async with api.stream(
            "GET",
            "/api/v2/events/stream",
            params={"from": "beginning", "types": "DagRunStarted", "run_id": "r2"},
        ) as response:
            [only] = await read_sse(response, 1)
        assert ev.decode(only["data"].encode()).id == sent[3].id

        # Config events (another topic) come through as well, with a position for it.
        async with api.stream(
            "GET", "/api/v2/events/stream", params={"types": "io.ledgerflow.VariableSet"}
        ) as response:
            await producer.send(
                settings.topics.config,
                ev.make_envelope(
                    ev.VariableSet(key="k", value="ciphertext"),
                    id=str(uuid.uuid4()),
                    source="tests/stream",
                    time=datetime.now(UTC),
                    aggregate_key="variable:k",
                ),
            )
            [config] = await read_sse(response, 1)
        assert config["event"] == "io.ledgerflow.VariableSet"
        assert "config.0=1" in config["id"]


async def test_heartbeats_and_bad_positions(api: httpx.AsyncClient) -> None:
    comments: list[str] = []
    async with api.stream("GET", "/api/v2/events/stream", params={"heartbeat": 0.2}) as response:
        await read_sse(response, 0, comments=comments)
    assert ": connected" in comments and ": heartbeat" in comments
    r = await api.get("/api/v2/events/stream", params={"from": "runs.x=1"})
    assert r.status_code == 400
    r = await api.get("/api/v2/events/stream", headers={"Authorization": ""})
    assert r.status_code == 401
