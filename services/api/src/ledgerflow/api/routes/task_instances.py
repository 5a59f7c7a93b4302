"""Task instances and their logs (``.../dagRuns/{dag_run_id}/taskInstances``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from fastapi.responses import PlainTextResponse, Response
from ledgerflow.api import queries
from ledgerflow.api.deps import Connection
from ledgerflow.api.routes.dag_runs import run_not_found
from ledgerflow.api.routes.dags import Limit, Offset
from ledgerflow.api.schemas import (
    ErrorResponse,
    TaskInstanceCollectionResponse,
    TaskInstanceLogResponse,
    TaskInstanceResponse,
)

router = APIRouter(
    prefix="/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances", tags=["Task Instance"]
)

MapIndex = Annotated[int, Query(ge=-1)]


def task_instance_not_found(
    dag_id: str, run_id: str, task_id: str, map_index: int
) -> HTTPException:
    return HTTPException(
        status.HTTP_404_NOT_FOUND,
        f"The Task Instance with dag_id: `{dag_id}`, run_id: `{run_id}`, task_id: `{task_id}`"
        f" and map_index: `{map_index}` was not found",
    )


@router.get(
    "", response_model=TaskInstanceCollectionResponse, responses={404: {"model": ErrorResponse}}
)
async def list_task_instances(
    dag_id: str, dag_run_id: str, conn: Connection, limit: Limit = 100, offset: Offset = 0
) -> TaskInstanceCollectionResponse:
    if not await queries.dag_run_exists(conn, dag_id, dag_run_id):
        raise run_not_found(dag_id, dag_run_id)
    return await queries.list_task_instances(conn, dag_id, dag_run_id, limit=limit, offset=offset)


@router.get(
    "/{task_id}", response_model=TaskInstanceResponse, responses={404: {"model": ErrorResponse}}
)
async def get_task_instance(
    dag_id: str, dag_run_id: str, task_id: str, conn: Connection, map_index: MapIndex = -1
) -> TaskInstanceResponse:
    ti = await queries.get_task_instance(conn, dag_id, dag_run_id, task_id, map_index)
    if ti is None:
        raise task_instance_not_found(dag_id, dag_run_id, task_id, map_index)
    return ti


@router.get(
    "/{task_id}/logs/{try_number}",
    response_model=TaskInstanceLogResponse,
    responses={
        404: {"model": ErrorResponse},
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
    },
)
async def get_log(
    dag_id: str,
    dag_run_id: str,
    task_id: str,
    try_number: Annotated[int, Path(ge=0)],
    request: Request,
    conn: Connection,
    map_index: MapIndex = -1,
) -> TaskInstanceLogResponse | Response:
    """Lines an attempt wrote so far (Airflow 3's structured log shape), or plain text
    when the client asks for ``text/plain``."""
    ti = await queries.get_task_instance(conn, dag_id, dag_run_id, task_id, map_index)
    if ti is None:
        raise task_instance_not_found(dag_id, dag_run_id, task_id, map_index)
    lines = await queries.task_log_lines(conn, dag_id, dag_run_id, task_id, map_index, try_number)
    if "text/plain" in request.headers.get("accept", ""):
        return PlainTextResponse("".join(f"{line.event}\n" for line in lines))
    return TaskInstanceLogResponse(content=lines, continuation_token=None)
