"""XCom entries of task instances
(``.../dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries``), read-only.

XComs are the values the latest successful try of each task instance pushed
(``return_value`` and the other keys), as projected from ``TaskAttemptSucceeded``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from ledgerflow.api import queries
from ledgerflow.api.deps import Connection
from ledgerflow.api.routes.dags import Limit, Offset
from ledgerflow.api.schemas import (
    ErrorResponse,
    XComCollectionResponse,
    XComResponseNative,
    XComResponseString,
)

router = APIRouter(
    prefix="/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries",
    tags=["XCom"],
)


@router.get("", response_model=XComCollectionResponse, responses={404: {"model": ErrorResponse}})
async def get_xcom_entries(
    dag_id: str,
    dag_run_id: str,
    task_id: str,
    conn: Connection,
    limit: Limit = 100,
    offset: Offset = 0,
    xcom_key: str | None = None,
    map_index: Annotated[int | None, Query(ge=-1)] = None,
) -> XComCollectionResponse:
    """XCom entries without their values; ``~`` as the DAG, run or task id means all."""
    return await queries.list_xcom_entries(
        conn,
        dag_id,
        dag_run_id,
        task_id,
        limit=limit,
        offset=offset,
        map_index=map_index,
        key=xcom_key,
    )


@router.get(
    "/{xcom_key}",
    response_model=XComResponseNative | XComResponseString,
    responses={404: {"model": ErrorResponse}},
)
async def get_xcom_entry(
    dag_id: str,
    dag_run_id: str,
    task_id: str,
    xcom_key: str,
    conn: Connection,
    map_index: Annotated[int, Query(ge=-1)] = -1,
    deserialize: bool = False,
    stringify: bool = False,
) -> XComResponseNative | XComResponseString:
    """One XCom entry with its value. Values are stored as JSON, so ``deserialize``
    changes nothing (it is accepted for Airflow clients); ``stringify`` returns the
    value as a string."""
    found = await queries.get_xcom_entry(conn, dag_id, dag_run_id, task_id, xcom_key, map_index)
    if found is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"XCom entry with key: `{xcom_key}` not found"
        )
    fields, value = found
    if stringify:
        return XComResponseString(**fields, value=None if value is None else str(value))
    return XComResponseNative(**fields, value=value)
