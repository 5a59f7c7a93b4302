"""The FastAPI application: ``create_app(settings)``.

The lifespan owns the Postgres pool, the event producer and the health probe; nothing
is created at import time. Every ``/api/v2`` route requires a bearer token or API key
and a role (``deps.authorize``: viewer for reads, user for writes, unless the route says
more).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import asyncpg
from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from ledgerflow.api import db
from ledgerflow.api.access import AccessControl
from ledgerflow.api.auth import Authenticator
from ledgerflow.api.deps import ApiContext, authorize
from ledgerflow.api.health import HealthProbe
from ledgerflow.api.input_guards import reject_nul
from ledgerflow.api.positions import (
    EventPositionMiddleware,
    PositionRecordingProducer,
    wait_for_positions,
)
from ledgerflow.api.problems import add_problem_handlers, problem
from ledgerflow.api.routes import (
    assets,
    auth,
    backfills,
    connections,
    dag_admin,
    dag_files,
    dag_runs,
    dag_runs_batch,
    dag_sources,
    dag_versions,
    dags,
    event_logs,
    events_stream,
    health,
    history,
    import_errors,
    monitor,
    pools,
    task_instance_tries,
    task_instances,
    tasks,
    users,
    variables,
    version,
    xcom,
)
from ledgerflow.common.kafka_io import ensure_topics
from ledgerflow.common.metrics import PROMETHEUS_CONTENT_TYPE, metrics_response
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
            producer = PositionRecordingProducer(settings, source="ledgerflow/api")
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
    app.state.access = AccessControl(authenticator)

    # wait_for=<position> (read-your-writes) after authorization, before any route.
    # NUL characters are refused before anything else (input_guards).
    api = APIRouter(
        prefix="/api/v2",
        dependencies=[
            Depends(reject_nul),
            Depends(authorize),
            Depends(wait_for_positions),
        ],
    )
    api.include_router(dag_files.router)
    api.include_router(dags.router)
    api.include_router(dag_admin.router)  # PATCH /dags, DELETE DAGs and runs
    api.include_router(dag_versions.router)
    api.include_router(dag_sources.router)
    api.include_router(dag_runs_batch.router)  # POST /dags/~/dagRuns/list
    api.include_router(dag_runs.router)
    api.include_router(history.router)  # .../dagRuns/{dag_run_id}/events
    api.include_router(events_stream.router)  # /events/stream (server-sent events)
    # Before task instances: their ``/{task_id}/{map_index}`` would match ``xcomEntries``.
    api.include_router(xcom.router)
    api.include_router(task_instance_tries.router)  # .../{task_id}/tries (same reason)
    api.include_router(task_instances.router)
    api.include_router(task_instances.dag_router)  # clearTaskInstances
    api.include_router(pools.router)
    api.include_router(assets.router)  # /assets (ADR 0013)
    api.include_router(backfills.router)
    api.include_router(tasks.router)
    api.include_router(variables.router)
    api.include_router(connections.router)
    api.include_router(users.router)
    api.include_router(users.api_keys_router)
    api.include_router(event_logs.router)
    api.include_router(import_errors.router)
    api.include_router(version.router)  # public
    api.include_router(monitor.router)  # public
    app.include_router(api)
    app.include_router(auth.router)
    app.include_router(health.router)
    _add_metrics_route(app)
    add_problem_handlers(app)  # every error as {detail, status, title, type}
    _add_error_handlers(app)
    app.add_middleware(EventPositionMiddleware)  # Ledgerflow-Event-Position on writes
    return app


def _add_metrics_route(app: FastAPI) -> None:
    """``GET /metrics``: this process's metrics for Prometheus, like ``/health`` public
    and outside the OpenAPI document (it is not part of Airflow's API)."""

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(await metrics_response(), media_type=PROMETHEUS_CONTENT_TYPE)


def _add_error_handlers(app: FastAPI) -> None:
    """Infrastructure trouble becomes 503 with Airflow's ``{"detail": ...}`` shape."""

    @app.exception_handler(asyncpg.UndefinedTableError)
    @app.exception_handler(asyncpg.InvalidSchemaNameError)
    async def projection_missing(request: Request, exc: Exception) -> JSONResponse:
        return problem(503, "The projection is not ready yet (has the projector run?)")

    @app.exception_handler(OSError)
    @app.exception_handler(asyncpg.PostgresConnectionError)
    @app.exception_handler(asyncpg.InterfaceError)
    async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %r", exc)
        return problem(503, f"The database is unavailable: {exc}")

    @app.exception_handler(KafkaError)
    async def kafka_unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("kafka unavailable: %r", exc)
        return problem(503, f"Could not publish to Kafka (retry later): {exc!r}")
