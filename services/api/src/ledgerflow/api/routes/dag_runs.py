"""DAG runs: trigger, list, get, clear, mark (``/api/v2/dags/{dag_id}/dagRuns``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.exceptions import RequestValidationError
from ledgerflow.api import catalog_queries, commands, dag_params, interventions, queries
from ledgerflow.api.deps import Connection, Context, CurrentUser
from ledgerflow.api.intervention_schemas import DagRunClearBody, DagRunPatchBody
from ledgerflow.api.routes import history
from ledgerflow.api.routes.dags import Limit, Offset, dag_not_found
from ledgerflow.api.schemas import (
    DagRunCollectionResponse,
    DagRunResponse,
    DagRunState,
    DagVersionRef,
    ErrorResponse,
    TaskInstanceCollectionResponse,
    TriggerDagRunBody,
)
from ledgerflow.common import events as ev

router = APIRouter(prefix="/dags/{dag_id}/dagRuns", tags=["DagRun"])

ALL_DAGS = "~"


def run_not_found(dag_id: str, run_id: str) -> HTTPException:
    return HTTPException(
        status.HTTP_404_NOT_FOUND,
        f"The DagRun with dag_id: `{dag_id}` and run_id: `{run_id}` was not found",
    )


@router.post(
    "",
    response_model=DagRunResponse,
    responses={
        400: {"model": ErrorResponse},
        404: {"model": ErrorResponse},
        409: {"model": ErrorResponse},
    },
)
async def trigger_dag_run(
    dag_id: str, body: TriggerDagRunBody, conn: Connection, ctx: Context, user: CurrentUser
) -> DagRunResponse:
    """Publishes ``TriggerDagRun`` and answers at once with the queued run; the
    scheduler creates the run (or rejects it) from the command. A ``conf`` that does
    not satisfy the DAG's params is refused with 400, as Airflow refuses it."""
    dag = await queries.get_dag(conn, dag_id)
    if dag is None:
        raise dag_not_found(dag_id)
    serialized = await queries.latest_serialized_dag(conn, dag_id)
    problem = dag_params.conf_problem(serialized, body.conf) if serialized else None
    if problem is not None:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, problem)
    now = datetime.now(UTC)
    run_id = body.dag_run_id or commands.manual_run_id(body.logical_date, now)
    if await queries.dag_run_exists(conn, dag_id, run_id):
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"DAGRun with dag_id: `{dag_id}` and run_id: `{run_id}` already exists",
        )
    envelope = commands.trigger_dag_run(
        dag_id,
        run_id,
        conf=body.conf,
        logical_date=body.logical_date,
        note=body.note,
        triggered_by=user,
        now=now,
    )
    await ctx.producer.send(ctx.settings.topics.commands, envelope)
    version = dag.latest_version_id
    return DagRunResponse(
        dag_run_id=run_id,
        dag_id=dag_id,
        state="queued",
        run_type="manual",
        conf=body.conf,
        logical_date=body.logical_date,
        queued_at=now,
        start_date=None,
        end_date=None,
        run_after=body.logical_date or now,
        triggered_by=user,
        note=body.note,
        dag_version_id=version,
        dag_versions=[
            DagVersionRef(id=version, version_number=dag.latest_version_number, dag_id=dag_id)
        ]
        if version
        else [],
    )


_RUN_ORDER = (
    "^-?(" + "|".join(k for k in catalog_queries.RUN_ORDERINGS if not k.startswith("-")) + ")$"
)
DateQuery = Annotated[datetime | None, Query()]


def _bound(name: str, value: datetime) -> datetime:
    """A filter date in UTC (naive means UTC); 422 naming the parameter when out of range."""
    try:
        return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
    except OverflowError:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("query", name),
                    "msg": "date out of range",
                    "input": value.isoformat(),
                }
            ]
        ) from None


@router.get("", response_model=DagRunCollectionResponse, responses={404: {"model": ErrorResponse}})
async def list_dag_runs(
    dag_id: str,
    conn: Connection,
    limit: Limit = 100,
    offset: Offset = 0,
    order_by: Annotated[str, Query(pattern=_RUN_ORDER)] = "queued_at",
    state: Annotated[list[DagRunState] | None, Query()] = None,
    run_type: Annotated[list[str] | None, Query()] = None,
    logical_date_gte: DateQuery = None,
    logical_date_gt: DateQuery = None,
    logical_date_lte: DateQuery = None,
    logical_date_lt: DateQuery = None,
    run_after_gte: DateQuery = None,
    run_after_lte: DateQuery = None,
    start_date_gte: DateQuery = None,
    start_date_lte: DateQuery = None,
    end_date_gte: DateQuery = None,
    end_date_lte: DateQuery = None,
    updated_at_gte: DateQuery = None,
    updated_at_lte: DateQuery = None,
) -> DagRunCollectionResponse:
    """Runs of a DAG with Airflow's filters; ``~`` as the DAG id lists the runs of every
    DAG (as in Airflow). ``logical_date_gte=X&logical_date_lte=X`` finds the run at
    logical date X (what ``ExternalTaskSensor`` asks)."""
    if dag_id != ALL_DAGS and await queries.get_dag(conn, dag_id) is None:
        raise dag_not_found(dag_id)
    given = locals()
    bounds = [
        (column, operator, _bound(f"{column}{suffix}", given[f"{column}{suffix}"]))
        for column in ("logical_date", "run_after", "start_date", "end_date", "updated_at")
        for suffix, operator in (("_gte", ">="), ("_gt", ">"), ("_lte", "<="), ("_lt", "<"))
        if given.get(f"{column}{suffix}") is not None
    ]
    return await catalog_queries.list_runs(
        conn,
        dag_ids=None if dag_id == ALL_DAGS else [dag_id],
        limit=limit,
        offset=offset,
        order_by=order_by,
        states=state or (),
        run_types=run_type or (),
        bounds=bounds,
    )


@router.get(
    "/{dag_run_id}", response_model=DagRunResponse, responses={404: {"model": ErrorResponse}}
)
async def get_dag_run(
    dag_id: str, dag_run_id: str, conn: Connection, ctx: Context, as_of: history.AsOf = None
) -> DagRunResponse:
    """The run; with ``as_of``, as it was then (folded from its events)."""
    if as_of is not None:
        return (await history.run_as_of(conn, ctx, dag_id, dag_run_id, as_of)).run
    run = await queries.get_dag_run(conn, dag_id, dag_run_id)
    if run is None:
        raise run_not_found(dag_id, dag_run_id)
    return run


@router.post(
    "/{dag_run_id}/clear",
    response_model=TaskInstanceCollectionResponse | DagRunResponse,
    responses={404: {"model": ErrorResponse}},
)
async def clear_dag_run(
    dag_id: str,
    dag_run_id: str,
    body: DagRunClearBody,
    conn: Connection,
    ctx: Context,
    user: CurrentUser,
) -> TaskInstanceCollectionResponse | DagRunResponse:
    """Airflow's run clear: with ``dry_run`` (the default) the task instances it would
    clear; otherwise publishes ``ClearTaskInstances`` for the whole run (or its failed
    instances) and answers with the run, queued again."""
    run = await queries.get_dag_run(conn, dag_id, dag_run_id)
    if run is None:
        raise run_not_found(dag_id, dag_run_id)
    tis = await interventions.clear_dry_run(
        conn,
        dag_id,
        [dag_run_id],
        task_ids=None,
        only_failed=body.only_failed,
        only_running=False,
        include_upstream=False,
        include_downstream=False,
    )
    if body.dry_run:
        return TaskInstanceCollectionResponse(task_instances=tis, total_entries=len(tis))
    cmd = ev.ClearTaskInstances(
        dag_id=dag_id, run_ids=(dag_run_id,), only_failed=body.only_failed, requested_by=user
    )
    envelope = interventions.command(
        cmd, dag_id=dag_id, now=datetime.now(UTC), correlation_id=dag_run_id
    )
    await ctx.producer.send(ctx.settings.topics.commands, envelope)
    if not tis:
        return run
    return run.model_copy(update={"state": "queued", "end_date": None})


@router.patch(
    "/{dag_run_id}",
    response_model=DagRunResponse,
    responses={400: {"model": ErrorResponse}, 404: {"model": ErrorResponse}},
)
async def patch_dag_run(
    dag_id: str,
    dag_run_id: str,
    body: DagRunPatchBody,
    conn: Connection,
    ctx: Context,
    user: CurrentUser,
    update_mask: Annotated[list[str] | None, Query()] = None,
) -> DagRunResponse:
    """Mark the run ``success``/``failed`` (its unfinished task instances follow, running
    attempts are killed) or ``queued`` (scheduled again)."""
    run = await queries.get_dag_run(conn, dag_id, dag_run_id)
    if run is None:
        raise run_not_found(dag_id, dag_run_id)
    fields = set(update_mask or ("state", "note"))
    unknown = fields - {"state", "note"}
    if unknown:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f"Invalid field(s) in update mask: {sorted(unknown)}"
        )
    if "note" in fields and body.note is not None:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "Run notes are not supported yet")
    if "state" not in fields or body.state is None:
        return run
    cmd = ev.SetDagRunState(dag_id=dag_id, run_id=dag_run_id, state=body.state, requested_by=user)
    envelope = interventions.command(
        cmd, dag_id=dag_id, now=datetime.now(UTC), correlation_id=dag_run_id
    )
    await ctx.producer.send(ctx.settings.topics.commands, envelope)
    now = datetime.now(UTC)
    end = None if body.state == "queued" else (run.end_date or now)
    return run.model_copy(update={"state": body.state, "end_date": end})
