"""The FastAPI application: ``create_app(settings)``.

The lifespan owns the Postgres pool, the event producer and the health probe; nothing
is created at import time. Every ``/api/v2`` route requires a bearer token.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import asyncpg
from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from ledgerflow.api import db
from ledgerflow.api.auth import Authenticator
from ledgerflow.api.deps import ApiContext, get_current_user
from ledgerflow.api.health import HealthProbe
from ledgerflow.api.routes import auth, dag_files, dag_runs, dags, health, task_instances
from ledgerflow.common.kafka_io import EventProducer, ensure_topics
from ledgerflow.common.settings import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    """Build the API. Raises :class:`~ledgerflow.api.auth.ConfigurationError` when no
    admin password is configured."""
    authenticator = Authenticator.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await ensure_topics(settings)
            pool = await db.create_pool(settings.database_url, schema=db.LIVE_SCHEMA)
            stack.push_async_callback(pool.close)
            producer = EventProducer(settings, source="ledgerflow/api")
            await producer.start()
            stack.push_async_callback(producer.stop)
            probe = HealthProbe(settings)
            stack.push_async_callback(probe.stop)
            app.state.ctx = ApiContext(
                settings=settings, pool=pool, producer=producer, auth=authenticator, health=probe
            )
            yield

    app = FastAPI(
        title="ledgerflow API",
        version="2",
        description="Airflow REST API v2 paths over ledgerflow's event log and projection.",
        lifespan=lifespan,
    )
    app.state.auth = authenticator

    api = APIRouter(prefix="/api/v2", dependencies=[Depends(get_current_user)])
    api.include_router(dag_files.router)
    api.include_router(dags.router)
    api.include_router(dag_runs.router)
    api.include_router(task_instances.router)
    app.include_router(api)
    app.include_router(auth.router)
    app.include_router(health.router)
    _add_error_handlers(app)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    """Infrastructure trouble becomes 503 with Airflow's ``{"detail": ...}`` shape."""

    @app.exception_handler(asyncpg.UndefinedTableError)
    @app.exception_handler(asyncpg.InvalidSchemaNameError)
    async def projection_missing(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            {"detail": "The projection is not ready yet (has the projector run?)"},
            status_code=503,
        )

    @app.exception_handler(OSError)
    @app.exception_handler(asyncpg.PostgresConnectionError)
    @app.exception_handler(asyncpg.InterfaceError)
    async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %r", exc)
        return JSONResponse({"detail": f"The database is unavailable: {exc}"}, status_code=503)

    @app.exception_handler(KafkaError)
    async def kafka_unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("kafka unavailable: %r", exc)
        return JSONResponse(
            {"detail": f"Could not publish to Kafka (retry later): {exc!r}"}, status_code=503
        )
