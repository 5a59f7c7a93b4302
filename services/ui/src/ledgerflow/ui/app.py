"""The UI's ASGI app: static pages plus a pass-through to the API.

``create_app(settings)`` builds everything from its arguments; the lifespan owns the
HTTP client to the API. The page itself is static HTML/CSS and ES modules in
``static/`` (no bundler; ``static/vendor/`` holds dagre, vendored from npm by
``services/ui/build-assets.sh``); it calls ``/auth/token`` and ``/api/v2/*`` on this same
origin, and gets live updates from ``/api/v2/events/stream`` through the proxy.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import httpx
from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from ledgerflow.common.metrics import PROMETHEUS_CONTENT_TYPE, metrics_response
from ledgerflow.common.settings import Settings
from ledgerflow.ui.proxy import forward

STATIC_DIR = Path(__file__).parent / "static"
PROXY_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def _api_client(request: Request) -> httpx.AsyncClient:
    client: httpx.AsyncClient = request.app.state.api_client
    return client


ApiClientDep = Annotated[httpx.AsyncClient, Depends(_api_client)]


def create_app(
    settings: Settings, *, api_transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    """The UI app for ``settings``; ``api_transport`` lets tests put a fake API behind it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(
            base_url=settings.resolved_api_url,
            transport=api_transport,
            # No read timeout: proxied responses may be long-lived streams (log tail).
            timeout=httpx.Timeout(connect=5.0, read=None, write=30.0, pool=10.0),
            follow_redirects=False,
        ) as client:
            app.state.api_client = client
            yield

    app = FastAPI(
        title="ledgerflow UI",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # the API has the OpenAPI document; the UI has no API of its own
    )

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        """The UI process is up and serving (the API has its own /health)."""
        return {"status": "healthy", "service": "ui"}

    @app.get("/health/system", include_in_schema=False)
    async def system_health(client: ApiClientDep) -> Response:
        """The API's ``/health`` (Kafka, projection lag, instances alive), for the
        header's health indicator; 503 with the reason when the API cannot be reached."""
        try:
            upstream = await client.get("/health", timeout=10.0)
        except httpx.HTTPError as exc:
            return JSONResponse(
                {"status": "unhealthy", "reasons": [f"the API is not reachable: {exc!r}"]},
                status_code=503,
            )
        return Response(
            upstream.content,
            status_code=upstream.status_code,
            media_type="application/json",
            headers={"Cache-Control": "no-store"},
        )

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        """This process's metrics for Prometheus (:mod:`ledgerflow.common.metrics`)."""
        return Response(await metrics_response(), media_type=PROMETHEUS_CONTENT_TYPE)

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    @app.api_route("/api/{path:path}", methods=PROXY_METHODS, include_in_schema=False)
    async def proxy_api(request: Request, client: ApiClientDep) -> Response:
        return await forward(request, client)

    @app.api_route("/auth/{path:path}", methods=PROXY_METHODS, include_in_schema=False)
    async def proxy_auth(request: Request, client: ApiClientDep) -> Response:
        return await forward(request, client)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
