"""Pausing DAGs in bulk (``PATCH /api/v2/dags``) and deleting DAGs and runs (admin).

Deleting publishes the commands the scheduler obeys (pause, fail active runs) and then
a ``DagDeleted``/``DagRunDeleted`` fact (see :mod:`ledgerflow.api.dag_lifecycle`); the
answer (204) comes once the broker has them, and ``Ledgerflow-Event-Position`` names
the fact, so ``wait_for`` on it waits until the rows are gone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from ledgerflow.api import catalog_queries, commands, dag_lifecycle, queries
from ledgerflow.api.deps import Connection, Context, CurrentUser, require
from ledgerflow.api.positions import HEADER, Position
from ledgerflow.api.routes.dag_runs import run_not_found
from ledgerflow.api.routes.dags import Limit, Offset, check_update_mask, dag_not_found
from ledgerflow.api.schemas import DagCollectionResponse, DagPatchBody, ErrorResponse
from ledgerflow.common import events as ev

router = APIRouter(prefix="/dags", tags=["DAG"])

UpdateMask = Annotated[list[str] | None, Query()]


@router.patch(
    "",
    response_model=DagCollectionResponse,
    responses={400: {"model": ErrorResponse}},
)
async def patch_dags(
    body: DagPatchBody,
    conn: Connection,
    ctx: Context,
    user: CurrentUser,
    limit: Limit = 100,
    offset: Offset = 0,
    dag_id_pattern: str | None = None,
    tags: Annotated[list[str] | None, Query()] = None,
    paused: bool | None = None,
    update_mask: UpdateMask = None,
) -> DagCollectionResponse:
    """Pause or unpause every DAG the filters select (a page of them, as Airflow):
    one ``SetDagPaused`` per DAG; the answer shows the requested value."""
    check_update_mask(update_mask)
    found = await queries.list_dags(
        conn,
        limit=limit,
        offset=offset,
        paused=paused,
        dag_id_pattern=dag_id_pattern,
        tags=tags or (),
    )
    now = datetime.now(UTC)
    for dag in found.dags:
        envelope = commands.set_dag_paused(dag.dag_id, body.is_paused, requested_by=user, now=now)
        await ctx.producer.send(ctx.settings.topics.commands, envelope)
    return DagCollectionResponse(
        dags=[d.model_copy(update={"is_paused": body.is_paused}) for d in found.dags],
        total_entries=found.total_entries,
    )


async def _publish(ctx: Context, cmds: list[ev.Envelope], fact: ev.Envelope) -> Response:
    for envelope in cmds:
        await ctx.producer.send(ctx.settings.topics.commands, envelope)
    future = await ctx.producer.send_soon(ctx.settings.topics.dags, fact)
    meta = await future
    position = Position(meta.topic, meta.partition, meta.offset)
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers={HEADER: str(position)})


@router.delete(
    "/{dag_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={404: {"model": ErrorResponse}},
    dependencies=[require("admin")],
)
async def delete_dag(dag_id: str, conn: Connection, ctx: Context, user: CurrentUser) -> Response:
    """Delete a DAG: its versions, runs, task instances, logs and XComs leave the
    projection (the event log keeps them)."""
    dag = await queries.get_dag(conn, dag_id)
    if dag is None:
        raise dag_not_found(dag_id)
    active = await catalog_queries.active_run_ids(conn, dag_id)
    cmds, fact = dag_lifecycle.delete_dag(
        dag_id, is_paused=dag.is_paused, active_runs=active, deleted_by=user, now=datetime.now(UTC)
    )
    return await _publish(ctx, cmds, fact)


@router.delete(
    "/{dag_id}/dagRuns/{dag_run_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={404: {"model": ErrorResponse}},
    dependencies=[require("admin")],
)
async def delete_dag_run(
    dag_id: str, dag_run_id: str, conn: Connection, ctx: Context, user: CurrentUser
) -> Response:
    """Delete a run (an active one is failed first, killing its attempts)."""
    run = await queries.get_dag_run(conn, dag_id, dag_run_id)
    if run is None:
        raise run_not_found(dag_id, dag_run_id)
    cmds, fact = dag_lifecycle.delete_dag_run(
        dag_id,
        dag_run_id,
        active=run.state in ("queued", "running"),
        deleted_by=user,
        now=datetime.now(UTC),
    )
    return await _publish(ctx, cmds, fact)
