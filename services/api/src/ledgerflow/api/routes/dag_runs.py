"""DAG runs: trigger, list, get (``/api/v2/dags/{dag_id}/dagRuns``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from ledgerflow.api import commands, queries
from ledgerflow.api.deps import Connection, Context, CurrentUser
from ledgerflow.api.routes.dags import Limit, Offset, dag_not_found
from ledgerflow.api.schemas import (
    DagRunCollectionResponse,
    DagRunResponse,
    DagRunState,
    DagVersionRef,
    ErrorResponse,
    TriggerDagRunBody,
)

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
    responses={404: {"model": ErrorResponse}, 409: {"model": ErrorResponse}},
)
async def trigger_dag_run(
    dag_id: str, body: TriggerDagRunBody, conn: Connection, ctx: Context, user: CurrentUser
) -> DagRunResponse:
    """Publishes ``TriggerDagRun`` and answers at once with the queued run; the
    scheduler creates the run (or rejects it) from the command."""
    dag = await queries.get_dag(conn, dag_id)
    if dag is None:
        raise dag_not_found(dag_id)
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


@router.get("", response_model=DagRunCollectionResponse, responses={404: {"model": ErrorResponse}})
async def list_dag_runs(
    dag_id: str,
    conn: Connection,
    limit: Limit = 100,
    offset: Offset = 0,
    order_by: Annotated[
        str, Query(pattern="^-?(queued_at|start_date|end_date|logical_date|run_id)$")
    ] = "queued_at",
    state: Annotated[list[DagRunState] | None, Query()] = None,
) -> DagRunCollectionResponse:
    """Runs of a DAG; ``~`` as the DAG id lists the runs of every DAG (as in Airflow)."""
    if dag_id != ALL_DAGS and await queries.get_dag(conn, dag_id) is None:
        raise dag_not_found(dag_id)
    return await queries.list_dag_runs(
        conn,
        None if dag_id == ALL_DAGS else dag_id,
        limit=limit,
        offset=offset,
        order_by=order_by,
        states=state or (),
    )


@router.get(
    "/{dag_run_id}", response_model=DagRunResponse, responses={404: {"model": ErrorResponse}}
)
async def get_dag_run(dag_id: str, dag_run_id: str, conn: Connection) -> DagRunResponse:
    run = await queries.get_dag_run(conn, dag_id, dag_run_id)
    if run is None:
        raise run_not_found(dag_id, dag_run_id)
    return run
