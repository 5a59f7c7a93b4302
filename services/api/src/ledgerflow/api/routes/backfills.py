"""Backfills (``/api/v2/backfills``), as Airflow 3's public API has them.

A write checks what it can against the projection (the DAG, its schedule, the dates,
``dag_run_conf`` against the DAG's params, another active backfill), allocates the id
and publishes a command keyed by the DAG id on the commands topic; the scheduler owning
the DAG decides (``ledgerflow.common.core.backfill``) and answers on the run log. The
response is the backfill as requested; ``wait_for=<Ledgerflow-Event-Position>`` on a
later read waits for the scheduler's answer (read-your-writes). A race the API cannot
see (two requests at once) is settled by the scheduler with ``BackfillRejected``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, HTTPException, Path, Query, status
from fastapi.exceptions import RequestValidationError
from ledgerflow.api import dag_params, queries
from ledgerflow.api.backfill_schemas import (
    BackfillCollectionResponse,
    BackfillDagRunResponse,
    BackfillPostBody,
    BackfillResponse,
    DryRunBackfillCollectionResponse,
    DryRunBackfillResponse,
)
from ledgerflow.api.deps import Connection, Context, CurrentUser
from ledgerflow.api.routes.dags import Limit, Offset
from ledgerflow.api.schemas import ErrorResponse
from ledgerflow.common import events as ev
from ledgerflow.common.core.backfill_state import (
    ExistingRun,
    backfill_problem,
    plan,
    plan_problem,
)
from ledgerflow.common.core.timetables import TimeRestriction, run_id_for, runs_between
from ledgerflow.common.events import BackfillRunPlan
from pydantic import BaseModel

router = APIRouter(prefix="/backfills", tags=["Backfill"])

SOURCE = "ledgerflow/api"
BackfillId = Annotated[int, Path(ge=0, le=2**31 - 1)]
_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse},
    409: {"model": ErrorResponse},
}


def _utc(value: datetime, field: str) -> datetime:
    """The date in UTC (naive means UTC); 422 naming the field when out of range."""
    try:
        return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
    except OverflowError:
        raise _invalid(field, "date out of range", value.isoformat()) from None


def _invalid(field: str, message: str, value: Any = None) -> RequestValidationError:
    return RequestValidationError(
        [{"type": "value_error", "loc": ("body", field), "msg": message, "input": value}]
    )


def _not_found(backfill_id: int) -> HTTPException:
    return HTTPException(
        status.HTTP_404_NOT_FOUND, f"Could not find backfill with id {backfill_id}"
    )


# --------------------------------------------------------------------------- planning
async def _plan(
    conn: asyncpg.Connection, body: BackfillPostBody, now: datetime
) -> tuple[str, tuple[BackfillRunPlan, ...]]:
    """Validate the request as Airflow does and resolve its logical dates against the
    DAG's runs in the projection. Returns the DAG's display name and the plan."""
    dag = await queries.get_dag(conn, body.dag_id)
    serialized = await queries.latest_serialized_dag(conn, body.dag_id)
    if dag is None or serialized is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"Could not find dag {body.dag_id}")
    from_date, to_date = _utc(body.from_date, "from_date"), _utc(body.to_date, "to_date")
    problem = backfill_problem(
        serialized,
        from_date=from_date,
        to_date=to_date,
        run_backwards=body.run_backwards,
        reprocess_behavior=body.reprocess_behavior,
        now=now,
    )
    if problem is not None:
        raise _invalid(*problem)
    conf_problem = dag_params.conf_problem(serialized, body.dag_run_conf)
    if conf_problem is not None:
        raise _invalid("dag_run_conf", conf_problem)
    assert serialized.timetable is not None  # backfill_problem refuses a DAG without one
    try:
        infos = runs_between(
            serialized.timetable,
            start=from_date,
            end=to_date,
            restriction=TimeRestriction(
                earliest=serialized.start_date, latest=serialized.end_date, catchup=True
            ),
        )
    except (ValueError, OverflowError) as exc:
        raise _invalid("dag_id", f"the DAG's schedule cannot be evaluated: {exc}") from None
    existing = await _existing_runs(conn, body.dag_id, from_date, to_date)
    items = plan(
        infos,
        existing,
        reprocess_behavior=body.reprocess_behavior,
        run_backwards=body.run_backwards,
        now=now,
        run_id_for=run_id_for,
    )
    return dag.dag_display_name, items


async def _existing_runs(
    conn: asyncpg.Connection, dag_id: str, start: datetime, end: datetime
) -> dict[datetime, ExistingRun]:
    """The latest run at each logical date in ``[start, end]`` (by start, queue time)."""
    rows = await conn.fetch(
        "SELECT DISTINCT ON (logical_date) logical_date, run_id, state FROM dag_runs"
        " WHERE dag_id = $1 AND logical_date BETWEEN $2 AND $3"
        " ORDER BY logical_date, COALESCE(start_date, queued_at) DESC NULLS LAST,"
        " queued_at DESC NULLS LAST",
        dag_id,
        start,
        end,
    )
    return {r["logical_date"]: ExistingRun(r["run_id"], r["state"]) for r in rows}


def _command(data: BaseModel, dag_id: str, now: datetime) -> ev.Envelope:
    return ev.make_envelope(
        data, id=str(uuid.uuid4()), source=SOURCE, time=now, aggregate_key=dag_id
    )


# --------------------------------------------------------------------------- reads
_COLUMNS = """
b.id, b.dag_id, b.from_date, b.to_date, b.dag_run_conf, b.is_paused, b.reprocess_behavior,
b.max_active_runs, b.created_at, b.completed_at, b.updated_at, b.run_backwards, b.cancelled,
b.triggering_user_name, b.dag_id AS dag_display_name
"""
_FROM = "backfills b"


def _backfill(row: asyncpg.Record) -> BackfillResponse:
    return BackfillResponse(**dict(row))


async def _get(conn: asyncpg.Connection, backfill_id: int) -> BackfillResponse | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM {_FROM} WHERE b.id = $1", backfill_id)
    return _backfill(row) if row is not None else None


async def _runs_of(conn: asyncpg.Connection, backfill_id: int) -> list[BackfillDagRunResponse]:
    rows = await conn.fetch(
        "SELECT r.sort_ordinal, r.logical_date, r.action, r.run_id AS dag_run_id,"
        " r.exception_reason, CASE WHEN r.action = 'skip' THEN NULL ELSE dr.state END AS state"
        " FROM backfill_dag_runs r LEFT JOIN dag_runs dr"
        " ON dr.dag_id = r.dag_id AND dr.run_id = r.run_id"
        " WHERE r.backfill_id = $1 ORDER BY r.sort_ordinal",
        backfill_id,
    )
    return [BackfillDagRunResponse(**dict(r)) for r in rows]


@router.get("", response_model=BackfillCollectionResponse)
async def list_backfills(
    dag_id: str,
    conn: Connection,
    limit: Limit = 100,
    offset: Offset = 0,
    order_by: Annotated[str, Query(pattern="^-?id$")] = "id",
) -> BackfillCollectionResponse:
    """A DAG's backfills (``dag_id`` is required, as in Airflow)."""
    direction = "DESC" if order_by.startswith("-") else "ASC"
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM {_FROM} WHERE b.dag_id = $1"
        f" ORDER BY b.id {direction} LIMIT $2 OFFSET $3",
        dag_id,
        limit,
        offset,
    )
    total = await conn.fetchval("SELECT count(*) FROM backfills WHERE dag_id = $1", dag_id)
    return BackfillCollectionResponse(backfills=[_backfill(r) for r in rows], total_entries=total)


@router.get("/{backfill_id}", response_model=BackfillResponse, responses=_ERRORS)
async def get_backfill(backfill_id: BackfillId, conn: Connection) -> BackfillResponse:
    """The backfill, with its logical dates and their runs (``dag_runs``)."""
    backfill = await _get(conn, backfill_id)
    if backfill is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Backfill not found")
    return backfill.model_copy(update={"dag_runs": await _runs_of(conn, backfill_id)})


# --------------------------------------------------------------------------- writes
@router.post("", response_model=BackfillResponse, responses=_ERRORS)
async def create_backfill(
    body: BackfillPostBody, conn: Connection, ctx: Context, user: CurrentUser
) -> BackfillResponse:
    """Publishes ``CreateBackfill``; 404 for an unknown DAG, 409 while the DAG has an
    active backfill, 422 for a request Airflow refuses (dates, schedule, conf, reverse
    with ``depends_on_past``) or one with no run to create."""
    now = datetime.now(UTC)
    display_name, items = await _plan(conn, body, now)
    active = await conn.fetchval(
        "SELECT id FROM backfills WHERE dag_id = $1 AND completed_at IS NULL LIMIT 1",
        body.dag_id,
    )
    if active is not None:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"There is already a running backfill for dag {body.dag_id}",
        )
    problem = plan_problem(body.dag_id, items)
    if problem is not None:
        raise _invalid("from_date", problem)
    backfill_id = int(await conn.fetchval("SELECT nextval('backfill_ids')"))
    cmd = ev.CreateBackfill(
        dag_id=body.dag_id,
        backfill_id=backfill_id,
        from_date=_utc(body.from_date, "from_date"),
        to_date=_utc(body.to_date, "to_date"),
        run_backwards=body.run_backwards,
        dag_run_conf=body.dag_run_conf,
        reprocess_behavior=body.reprocess_behavior,
        max_active_runs=body.max_active_runs,
        requested_by=user,
    )
    await ctx.producer.send(ctx.settings.topics.commands, _command(cmd, body.dag_id, now))
    return BackfillResponse(
        id=backfill_id,
        dag_id=body.dag_id,
        from_date=cmd.from_date,
        to_date=cmd.to_date,
        dag_run_conf=body.dag_run_conf,
        is_paused=False,
        reprocess_behavior=body.reprocess_behavior,
        max_active_runs=body.max_active_runs,
        created_at=now,
        completed_at=None,
        updated_at=now,
        dag_display_name=display_name,
        run_backwards=body.run_backwards,
        triggering_user_name=user,
    )


@router.post("/dry_run", response_model=DryRunBackfillCollectionResponse, responses=_ERRORS)
async def create_backfill_dry_run(
    body: BackfillPostBody, conn: Connection
) -> DryRunBackfillCollectionResponse:
    """The logical dates a backfill would run (create or re-run), in run order."""
    _, items = await _plan(conn, body, datetime.now(UTC))
    dates = [
        DryRunBackfillResponse(logical_date=i.logical_date) for i in items if i.action != "skip"
    ]
    return DryRunBackfillCollectionResponse(backfills=dates, total_entries=len(dates))


async def _change(
    backfill_id: int, conn: Connection, ctx: Context, user: str, action: str
) -> BackfillResponse:
    backfill = await _get(conn, backfill_id)
    if backfill is None:
        raise _not_found(backfill_id)
    if backfill.completed_at is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, "Backfill is already completed.")
    if action != "cancel" and backfill.is_paused == (action == "pause"):
        return backfill  # already so (as Airflow): no command, so nothing to wait for
    now = datetime.now(UTC)
    kind = {"pause": ev.PauseBackfill, "unpause": ev.UnpauseBackfill, "cancel": ev.CancelBackfill}
    cmd = kind[action](dag_id=backfill.dag_id, backfill_id=backfill_id, requested_by=user)
    await ctx.producer.send(ctx.settings.topics.commands, _command(cmd, backfill.dag_id, now))
    update: dict[str, Any] = {"updated_at": now, "is_paused": action != "unpause"}
    if action == "cancel":
        update.update(cancelled=True, completed_at=now)
    return backfill.model_copy(update=update)


@router.put("/{backfill_id}/pause", response_model=BackfillResponse, responses=_ERRORS)
async def pause_backfill(
    backfill_id: BackfillId, conn: Connection, ctx: Context, user: CurrentUser
) -> BackfillResponse:
    """Create no more runs for the backfill (its runs already made go on)."""
    return await _change(backfill_id, conn, ctx, user, "pause")


@router.put("/{backfill_id}/unpause", response_model=BackfillResponse, responses=_ERRORS)
async def unpause_backfill(
    backfill_id: BackfillId, conn: Connection, ctx: Context, user: CurrentUser
) -> BackfillResponse:
    return await _change(backfill_id, conn, ctx, user, "unpause")


@router.put("/{backfill_id}/cancel", response_model=BackfillResponse, responses=_ERRORS)
async def cancel_backfill(
    backfill_id: BackfillId, conn: Connection, ctx: Context, user: CurrentUser
) -> BackfillResponse:
    """Stop the backfill: no more runs; its runs not started yet are marked failed."""
    return await _change(backfill_id, conn, ctx, user, "cancel")
