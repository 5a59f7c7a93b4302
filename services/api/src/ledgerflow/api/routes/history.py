"""Run history: ``GET /api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/events`` and the
``as_of`` parameter the run and task instance routes take (see
:mod:`ledgerflow.api.history`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from ledgerflow.api import history
from ledgerflow.api.deps import Connection, Context
from ledgerflow.api.schemas import ErrorResponse, TaskInstanceCollectionResponse

router = APIRouter(prefix="/dags/{dag_id}/dagRuns/{dag_run_id}", tags=["DagRun"])

AsOf = Annotated[
    str | None,
    Query(
        description="Answer as things were after the run's history up to this event "
        "`sequence` (see `.../events`) or this ISO 8601 time (with offset)."
    ),
]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0)]


def _not_found(dag_id: str, run_id: str, as_of: str | None = None) -> HTTPException:
    when = f" as of `{as_of}`" if as_of is not None else ""
    return HTTPException(
        status.HTTP_404_NOT_FOUND,
        f"The DagRun with dag_id: `{dag_id}` and run_id: `{run_id}` was not found{when}",
    )


@router.get(
    "/events",
    response_model=history.RunEventCollectionResponse,
    responses={404: {"model": ErrorResponse}},
)
async def list_run_events(
    dag_id: str,
    dag_run_id: str,
    conn: Connection,
    ctx: Context,
    limit: Limit = 100,
    offset: Offset = 0,
) -> history.RunEventCollectionResponse:
    """The run's events from the raw event store: the commands addressed to it and its
    run-log facts, by time and place in the log, numbered from 1 (``sequence``)."""
    page = await history.list_run_events(
        conn, ctx.settings.topics, dag_id, dag_run_id, limit=limit, offset=offset
    )
    if page is None:
        raise _not_found(dag_id, dag_run_id)
    return page


async def run_as_of(
    conn: Connection, ctx: Context, dag_id: str, run_id: str, as_of: str
) -> history.RunAsOf:
    """The run at ``as_of`` (for routes taking :data:`AsOf`); 400 for a bad value, 404
    when the run did not exist then."""
    try:
        point = history.parse_as_of(as_of)
    except ValueError:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            "as_of must be an event sequence number or an ISO 8601 time with offset",
        ) from None
    found = await history.run_as_of(conn, ctx.settings.topics, dag_id, run_id, point)
    if found is None:
        raise _not_found(dag_id, run_id, as_of)
    return found


def task_instances_page(
    found: history.RunAsOf,
    *,
    limit: int,
    offset: int,
    task_id: str | None = None,
    states: Sequence[str] = (),
) -> TaskInstanceCollectionResponse:
    """The list route's filters and paging over the task instances of a past state."""
    tis = [
        ti
        for ti in found.task_instances
        if (task_id is None or ti.task_id == task_id) and (not states or ti.state in states)
    ]
    return TaskInstanceCollectionResponse(
        task_instances=tis[offset : offset + limit], total_entries=len(tis)
    )
