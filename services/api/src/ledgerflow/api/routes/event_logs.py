"""Audit log (``/api/v2/eventLogs``), Airflow REST API v2's paths, filters and bodies.

Served from the projection's raw event store (the ``event_logs`` view, migration 0005):
one entry per event the projector has read, except task log chunks. ``event`` is the
event's type (``TriggerDagRun``, ``VariableSet``, ``DagRunQueued``, ...), where Airflow
has its own names; ``owner`` is who caused it (a username or ``apikey:<name>``).
Readable by every role (secrets are never in it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import asyncpg
from fastapi import APIRouter, HTTPException, Path, Query, status
from ledgerflow.api import event_log_store
from ledgerflow.api.deps import Connection
from ledgerflow.api.event_log_store import EventLogFilter
from ledgerflow.api.schemas import ErrorResponse
from pydantic import BaseModel

router = APIRouter(prefix="/eventLogs", tags=["Event Log"])


class EventLogResponse(BaseModel):
    event_log_id: int
    when: datetime
    dag_id: str | None
    task_id: str | None
    run_id: str | None
    map_index: int | None
    try_number: int | None
    event: str
    logical_date: datetime | None
    owner: str | None
    extra: str | None
    dag_display_name: str | None = None
    task_display_name: str | None = None


class EventLogCollectionResponse(BaseModel):
    event_logs: list[EventLogResponse]
    total_entries: int


def _entry(row: asyncpg.Record) -> EventLogResponse:
    return EventLogResponse(
        event_log_id=row["event_log_id"],
        when=row["when"],
        dag_id=row["dag_id"],
        task_id=row["task_id"],
        run_id=row["run_id"],
        map_index=row["map_index"],
        try_number=row["try_number"],
        event=row["event"],
        logical_date=row["logical_date"],
        owner=row["owner"],
        extra=event_log_store.extra_of(row),
        dag_display_name=row["dag_id"],
        task_display_name=row["task_id"],
    )


Events = Annotated[list[str] | None, Query()]


@router.get("", response_model=EventLogCollectionResponse)
async def get_event_logs(
    conn: Connection,
    limit: Annotated[int, Query(ge=0, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    order_by: Annotated[list[str] | None, Query()] = None,
    dag_id: str | None = None,
    task_id: str | None = None,
    run_id: str | None = None,
    map_index: int | None = None,
    try_number: int | None = None,
    event: str | None = None,
    owner: str | None = None,
    before: datetime | None = None,
    after: datetime | None = None,
    included_events: Events = None,
    excluded_events: Events = None,
    dag_id_pattern: str | None = None,
    task_id_pattern: str | None = None,
    run_id_pattern: str | None = None,
    owner_pattern: str | None = None,
    event_pattern: str | None = None,
) -> EventLogCollectionResponse:
    """Entries oldest first (``order_by=-when`` for newest first); ``before``/``after``
    compare with ``when``, the event's time."""
    filters = EventLogFilter(
        dag_id=dag_id,
        task_id=task_id,
        run_id=run_id,
        map_index=map_index,
        try_number=try_number,
        event=event,
        owner=owner,
        before=before,
        after=after,
        included_events=included_events,
        excluded_events=excluded_events,
        dag_id_pattern=dag_id_pattern,
        task_id_pattern=task_id_pattern,
        run_id_pattern=run_id_pattern,
        owner_pattern=owner_pattern,
        event_pattern=event_pattern,
    )
    rows, total = await event_log_store.list_entries(
        conn, filters, limit=limit, offset=offset, order_by=order_by or ["id"]
    )
    return EventLogCollectionResponse(event_logs=[_entry(r) for r in rows], total_entries=total)


@router.get(
    "/{event_log_id}", response_model=EventLogResponse, responses={404: {"model": ErrorResponse}}
)
async def get_event_log(
    event_log_id: Annotated[int, Path(ge=0, le=2**63 - 1)], conn: Connection
) -> EventLogResponse:
    row = await event_log_store.get_entry(conn, event_log_id)
    if row is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"The Event Log with id: `{event_log_id}` not found"
        )
    return _entry(row)
