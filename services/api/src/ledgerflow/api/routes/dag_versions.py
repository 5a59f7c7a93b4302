"""DAG versions (``/api/v2/dags/{dag_id}/dagVersions``), as Airflow 3 lists them: one per
submitted content of the DAG, numbered from 1. ``~`` as the DAG id lists every DAG's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status
from ledgerflow.api import catalog_queries, queries
from ledgerflow.api.airflow_models import DAGVersionCollectionResponse, DagVersionResponse
from ledgerflow.api.deps import Connection
from ledgerflow.api.routes.dags import Limit, Offset, dag_not_found
from ledgerflow.api.schemas import ErrorResponse

router = APIRouter(prefix="/dags/{dag_id}/dagVersions", tags=["DagVersion"])

_ORDER = "^-?(" + "|".join(k for k in catalog_queries.VERSION_ORDERINGS if k[0] != "-") + ")$"


@router.get(
    "", response_model=DAGVersionCollectionResponse, responses={404: {"model": ErrorResponse}}
)
async def list_dag_versions(
    dag_id: str,
    conn: Connection,
    limit: Limit = 100,
    offset: Offset = 0,
    order_by: Annotated[str, Query(pattern=_ORDER)] = "version_number",
    version_number: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> DAGVersionCollectionResponse:
    if dag_id != "~" and await queries.get_dag(conn, dag_id) is None:
        raise dag_not_found(dag_id)
    return await catalog_queries.list_dag_versions(
        conn,
        None if dag_id == "~" else dag_id,
        limit=limit,
        offset=offset,
        order_by=order_by,
        version_number=version_number,
    )


@router.get(
    "/{version_number}",
    response_model=DagVersionResponse,
    responses={404: {"model": ErrorResponse}},
)
async def get_dag_version(
    dag_id: str,
    version_number: Annotated[int, Path(ge=1, le=2**31 - 1)],
    conn: Connection,
) -> DagVersionResponse:
    found = await catalog_queries.get_dag_version(conn, dag_id, version_number)
    if found is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"The DagVersion with dag_id: `{dag_id}` and version_number: `{version_number}`"
            " was not found",
        )
    return found
