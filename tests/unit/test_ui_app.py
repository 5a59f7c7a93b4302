"""The UI app: its own /health, the static page, and the pass-through to the API.

The API behind it is a small fake FastAPI app that echoes what it received.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from ledgerflow.common.settings import Settings
from ledgerflow.ui.app import create_app


def make_echo_api() -> FastAPI:
    api = FastAPI()

    @api.api_route("/{path:path}", methods=["GET", "POST", "PATCH", "DELETE"])
    async def echo(path: str, request: Request) -> Response:
        if path == "api/v2/teapot":
            return Response("short and stout", status_code=418, media_type="text/plain")
        body = await request.body()
        echoed = {
            "method": request.method,
            "path": f"/{path}",
            "query": request.url.query,
            "auth": request.headers.get("authorization", ""),
            "last_event_id": request.headers.get("last-event-id", ""),
            "host": request.headers.get("host", ""),
            "body": json.loads(body) if body else None,
        }
        response = Response(
            content=json.dumps(echoed),
            media_type="application/json",
        )
        response.headers.append("set-cookie", "a=1")
        response.headers.append("set-cookie", "b=2")
        return response

    return api


@asynccontextmanager
async def running_ui(
    settings: Settings, api_transport: httpx.AsyncBaseTransport | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """The UI app with its lifespan running, and a client talking to it in-process."""
    app = create_app(settings, api_transport=api_transport)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ui.test") as client:
            yield client


@pytest.fixture
async def ui() -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(api_url="http://api.internal:8081")
    async with running_ui(settings, httpx.ASGITransport(app=make_echo_api())) as client:
        yield client


async def test_health(ui: httpx.AsyncClient) -> None:
    response = await ui.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "healthy", "service": "ui"}


async def test_the_page_and_its_assets(ui: httpx.AsyncClient) -> None:
    page = await ui.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert '<script type="module" src="/static/js/main.js"' in page.text
    assert (await ui.get("/static/js/main.js")).status_code == 200
    assert (await ui.get("/static/vendor/dagre.min.js")).status_code == 200  # graph layout
    assert "prefers-color-scheme: dark" in (await ui.get("/static/app.css")).text


async def test_the_event_stream_takes_token_and_position_from_the_query(
    ui: httpx.AsyncClient,
) -> None:
    """EventSource cannot set headers: the proxy turns ?access_token / ?last_event_id into
    Authorization / Last-Event-ID for the event stream, and keeps the other filters."""
    response = await ui.get(
        "/api/v2/events/stream?dag_id=etl&access_token=tok&last_event_id=runs.0%3D5&types=A,B"
    )
    echoed = response.json()
    assert echoed["auth"] == "Bearer tok"
    assert echoed["last_event_id"] == "runs.0=5"
    assert echoed["query"] == "dag_id=etl&types=A%2CB"
    # A Last-Event-ID header (EventSource's own reconnect) wins over the query.
    response = await ui.get(
        "/api/v2/events/stream?last_event_id=old", headers={"Last-Event-ID": "new"}
    )
    assert response.json()["last_event_id"] == "new"
    # Other paths pass their query through untouched.
    echoed = (await ui.get("/api/v2/dags?access_token=x")).json()
    assert echoed["query"] == "access_token=x" and echoed["auth"] == ""


async def test_api_requests_pass_through_with_method_query_headers_and_body(
    ui: httpx.AsyncClient,
) -> None:
    response = await ui.patch(
        "/api/v2/dags/etl?x=1&y=two",
        json={"is_paused": True},
        headers={"Authorization": "Bearer t"},
    )
    assert response.status_code == 200
    echoed = response.json()
    assert echoed["method"] == "PATCH"
    assert echoed["path"] == "/api/v2/dags/etl"
    assert echoed["query"] == "x=1&y=two"
    assert echoed["auth"] == "Bearer t"
    assert echoed["host"] == "api.internal:8081"  # not the UI's own host
    assert echoed["body"] == {"is_paused": True}
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]


async def test_auth_passes_through(ui: httpx.AsyncClient) -> None:
    response = await ui.post("/auth/token", json={"username": "admin", "password": "pw"})
    assert response.json()["path"] == "/auth/token"
    assert response.json()["body"] == {"username": "admin", "password": "pw"}


async def test_upstream_status_and_body_are_kept(ui: httpx.AsyncClient) -> None:
    response = await ui.get("/api/v2/teapot")
    assert response.status_code == 418
    assert response.text == "short and stout"


async def test_an_unreachable_api_is_a_502(unused_port: int) -> None:
    settings = Settings(api_url=f"http://127.0.0.1:{unused_port}")
    async with running_ui(settings) as client:
        response = await client.get("/api/v2/dags")
        assert response.status_code == 502
        assert "is unreachable" in response.json()["detail"]
        assert (await client.get("/health")).status_code == 200  # the UI itself is fine


@pytest.fixture
def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
