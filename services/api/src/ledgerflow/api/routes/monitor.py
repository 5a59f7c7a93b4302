"""``GET /api/v2/monitor/health`` (public, ADR 0009) in Airflow's ``HealthInfoResponse``
shape, mapped onto ledgerflow's parts:

- ``metadatabase``: the projection's Postgres answers a query.
- ``scheduler``: ``latest_scheduler_heartbeat`` is the time of the newest fact the
  scheduler wrote. It is ``unhealthy`` when a trigger has waited more than
  :data:`SCHEDULER_ANSWER_S` seconds for any scheduler answer (a scheduler that is idle
  writes nothing, so silence alone is not a failure); null before any command or fact.
- ``dag_processor``: the projector (what turns the log into what the API reads);
  ``unhealthy`` when ``GET /health`` finds the projection behind the log or Kafka
  unreachable; the heartbeat is the projector's last batch.
- ``triggerer``: ledgerflow has none (no deferrable operators): status and heartbeat null,
  which is what Airflow answers when no triggerer ever ran.
"""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
from fastapi import APIRouter
from ledgerflow.api.airflow_models import (
    BaseInfoResponse,
    DagProcessorInfoResponse,
    HealthInfoResponse,
    SchedulerInfoResponse,
    TriggererInfoResponse,
)
from ledgerflow.api.deps import PUBLIC, Context

router = APIRouter(prefix="/monitor", tags=["Monitor"])

SCHEDULER_ANSWER_S = 30.0
SCHEDULER_SOURCE = "ledgerflow/scheduler"

_LATEST_BY_SOURCE = (
    "SELECT event_time FROM events WHERE source = $1 ORDER BY event_time DESC LIMIT 1"
)
# Triggers always get an answer (DagRunQueued or TriggerRejected); other commands may
# not (pausing a paused DAG changes nothing), so only they count as "waiting".
_LATEST_TRIGGER = (
    "SELECT event_time FROM events WHERE topic = $1 AND event_type = 'TriggerDagRun'"
    " ORDER BY event_time DESC LIMIT 1"
)


def _iso(value: object) -> str | None:
    return value.isoformat(timespec="microseconds") if value is not None else None  # type: ignore[attr-defined]


@router.get("/health", response_model=HealthInfoResponse, dependencies=[PUBLIC])
async def get_health(ctx: Context) -> HealthInfoResponse:
    database = "healthy"
    scheduler: SchedulerInfoResponse = SchedulerInfoResponse(
        status=None, latest_scheduler_heartbeat=None
    )
    projector_beat = None
    try:
        async with ctx.pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
            try:
                beat = await conn.fetchval(_LATEST_BY_SOURCE, SCHEDULER_SOURCE)
                command = await conn.fetchval(_LATEST_TRIGGER, ctx.settings.topics.commands)
                projector_beat = await conn.fetchval("SELECT updated_at FROM projector_status")
            except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
                beat = command = None
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        database, beat, command = "unhealthy", None, None
    if beat is not None or command is not None:
        waiting = (
            command is not None
            and (beat is None or command > beat)
            and (datetime.now(UTC) - command).total_seconds() > SCHEDULER_ANSWER_S
        )
        scheduler = SchedulerInfoResponse(
            status="unhealthy" if waiting else "healthy", latest_scheduler_heartbeat=_iso(beat)
        )
    report = await ctx.health.check(ctx.pool)
    return HealthInfoResponse(
        metadatabase=BaseInfoResponse(status=database),
        scheduler=scheduler,
        triggerer=TriggererInfoResponse(status=None, latest_triggerer_heartbeat=None),
        dag_processor=DagProcessorInfoResponse(
            status=report.projection.get("status", "unhealthy"),
            latest_dag_processor_heartbeat=_iso(projector_beat),
        ),
    )
