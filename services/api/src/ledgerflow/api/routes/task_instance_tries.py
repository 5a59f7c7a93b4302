"""Tries of a task instance (``.../taskInstances/{task_id}[/{map_index}]/tries``), from
the projection's ``task_attempts``: one per attempt, oldest first, as Airflow's
``TaskInstanceHistoryResponse``. Registered before the task instance routes, whose
``/{task_id}/{map_index}`` would otherwise match ``/{task_id}/tries``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, status
from ledgerflow.api import catalog_queries, queries
from ledgerflow.api.airflow_models import (
    TaskInstanceHistoryCollectionResponse,
    TaskInstanceHistoryResponse,
)
from ledgerflow.api.deps import Connection
from ledgerflow.api.schemas import ErrorResponse

router = APIRouter(
    prefix="/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}",
    tags=["Task Instance"],
)

MapIndexPath = Annotated[int, Path(ge=-1, le=2**31 - 1)]
TryNumber = Annotated[int, Path(ge=0, le=2**31 - 1)]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorResponse}}


def _ti_not_found(dag_id: str, run_id: str, task_id: str, map_index: int) -> HTTPException:
    return HTTPException(
        status.HTTP_404_NOT_FOUND,
        f"The Task Instance with dag_id: `{dag_id}`, run_id: `{run_id}`, task_id: `{task_id}`"
        f" and map_index: `{map_index}` was not found",
    )


async def _tries(
    conn: Connection, dag_id: str, run_id: str, task_id: str, map_index: int
) -> TaskInstanceHistoryCollectionResponse:
    if await queries.get_task_instance(conn, dag_id, run_id, task_id, map_index) is None:
        raise _ti_not_found(dag_id, run_id, task_id, map_index)
    tries = await catalog_queries.task_instance_tries(conn, dag_id, run_id, task_id, map_index)
    return TaskInstanceHistoryCollectionResponse(task_instances=tries, total_entries=len(tries))


async def _one(
    conn: Connection, dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int
) -> TaskInstanceHistoryResponse:
    found = await catalog_queries.task_instance_tries(
        conn, dag_id, run_id, task_id, map_index, try_number
    )
    if not found:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"The Task Instance with dag_id: `{dag_id}`, run_id: `{run_id}`, task_id:"
            f" `{task_id}`, try_number: `{try_number}` and map_index: `{map_index}` was not"
            " found",
        )
    return found[0]


@router.get("/tries", response_model=TaskInstanceHistoryCollectionResponse, responses=_NOT_FOUND)
async def get_task_instance_tries(
    dag_id: str,
    dag_run_id: str,
    task_id: str,
    conn: Connection,
    map_index: Annotated[int, Query(ge=-1, le=2**31 - 1)] = -1,
) -> TaskInstanceHistoryCollectionResponse:
    return await _tries(conn, dag_id, dag_run_id, task_id, map_index)


@router.get(
    "/tries/{task_try_number}", response_model=TaskInstanceHistoryResponse, responses=_NOT_FOUND
)
async def get_task_instance_try_details(
    dag_id: str,
    dag_run_id: str,
    task_id: str,
    task_try_number: TryNumber,
    conn: Connection,
    map_index: Annotated[int, Query(ge=-1, le=2**31 - 1)] = -1,
) -> TaskInstanceHistoryResponse:
    return await _one(conn, dag_id, dag_run_id, task_id, map_index, task_try_number)


@router.get(
    "/{map_index}/tries",
    response_model=TaskInstanceHistoryCollectionResponse,
    responses=_NOT_FOUND,
)
async def get_mapped_task_instance_tries(
    dag_id: str, dag_run_id: str, task_id: str, map_index: MapIndexPath, conn: Connection
) -> TaskInstanceHistoryCollectionResponse:
    return await _tries(conn, dag_id, dag_run_id, task_id, map_index)


@router.get(
    "/{map_index}/tries/{task_try_number}",
    response_model=TaskInstanceHistoryResponse,
    responses=_NOT_FOUND,
)
async def get_mapped_task_instance_try_details(
    dag_id: str,
    dag_run_id: str,
    task_id: str,
    map_index: MapIndexPath,
    task_try_number: TryNumber,
    conn: Connection,
) -> TaskInstanceHistoryResponse:
    return await _one(conn, dag_id, dag_run_id, task_id, map_index, task_try_number)
