"""DAGs: list, get, pause/unpause (``/api/v2/dags``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from ledgerflow.api import commands, queries, task_views
from ledgerflow.api.deps import Connection, Context, CurrentUser
from ledgerflow.api.schemas import (
    DagCollectionResponse,
    DagDetailsResponse,
    DagPatchBody,
    DagResponse,
    ErrorResponse,
)

router = APIRouter(prefix="/dags", tags=["DAG"])

Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=2**63 - 1)]


def dag_not_found(dag_id: str) -> HTTPException:
    return HTTPException(
        status.HTTP_404_NOT_FOUND, f"The DAG with dag_id: `{dag_id}` was not found"
    )


@router.get("", response_model=DagCollectionResponse)
async def list_dags(
    conn: Connection,
    limit: Limit = 100,
    offset: Offset = 0,
    order_by: Annotated[str, Query(pattern="^-?(dag_id|last_parsed_time)$")] = "dag_id",
    paused: bool | None = None,
    dag_id_pattern: str | None = None,
    tags: Annotated[list[str] | None, Query()] = None,
) -> DagCollectionResponse:
    return await queries.list_dags(
        conn,
        limit=limit,
        offset=offset,
        order_by=order_by,
        paused=paused,
        dag_id_pattern=dag_id_pattern,
        tags=tags or (),
    )


@router.get("/{dag_id}", response_model=DagResponse, responses={404: {"model": ErrorResponse}})
async def get_dag(dag_id: str, conn: Connection) -> DagResponse:
    dag = await queries.get_dag(conn, dag_id)
    if dag is None:
        raise dag_not_found(dag_id)
    return dag


@router.get(
    "/{dag_id}/details",
    response_model=DagDetailsResponse,
    responses={404: {"model": ErrorResponse}},
)
async def get_dag_details(dag_id: str, conn: Connection) -> DagDetailsResponse:
    """The DAG with what its latest version declares (params, catchup, start date...)."""
    dag = await queries.get_dag(conn, dag_id)
    serialized = await queries.latest_serialized_dag(conn, dag_id)
    if dag is None or serialized is None:
        raise dag_not_found(dag_id)
    return task_views.dag_details(dag, serialized)


def check_update_mask(update_mask: list[str] | None) -> None:
    """Airflow lets only ``is_paused`` be patched (400 otherwise)."""
    if update_mask and set(update_mask) != {"is_paused"}:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            "Only `is_paused` field can be updated through the REST API",
        )


@router.patch(
    "/{dag_id}",
    response_model=DagResponse,
    responses={400: {"model": ErrorResponse}, 404: {"model": ErrorResponse}},
)
async def patch_dag(
    dag_id: str,
    body: DagPatchBody,
    conn: Connection,
    ctx: Context,
    user: CurrentUser,
    update_mask: Annotated[list[str] | None, Query()] = None,
) -> DagResponse:
    """Publishes ``SetDagPaused``; the projection follows once the scheduler has applied
    it, so the response shows the requested value."""
    check_update_mask(update_mask)
    dag = await queries.get_dag(conn, dag_id)
    if dag is None:
        raise dag_not_found(dag_id)
    envelope = commands.set_dag_paused(
        dag_id, body.is_paused, requested_by=user, now=datetime.now(UTC)
    )
    await ctx.producer.send(ctx.settings.topics.commands, envelope)
    return dag.model_copy(update={"is_paused": body.is_paused})
