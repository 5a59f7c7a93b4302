"""``GET /api/v2/dagSources/{dag_id}``: the source of a DAG version (the UI's Code tab).
The projection keeps each version's submitted file, so every version stays readable."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import PlainTextResponse, Response
from ledgerflow.api import catalog_queries
from ledgerflow.api.airflow_models import DAGSourceResponse
from ledgerflow.api.deps import Connection
from ledgerflow.api.schemas import ErrorResponse

router = APIRouter(prefix="/dagSources", tags=["DagSource"])


@router.get(
    "/{dag_id}",
    response_model=DAGSourceResponse,
    responses={
        404: {"model": ErrorResponse},
        406: {"model": ErrorResponse},
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
    },
)
async def get_dag_source(
    dag_id: str,
    request: Request,
    conn: Connection,
    version_number: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> DAGSourceResponse | Response:
    """The latest version's source unless ``version_number`` is given; plain text when
    the client accepts only ``text/plain`` (as Airflow)."""
    source = await catalog_queries.dag_source(conn, dag_id, version_number)
    if source is None:
        what = f" and version_number: `{version_number}`" if version_number is not None else ""
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"The source of the DAG with dag_id: `{dag_id}`{what} was not found",
        )
    accept = request.headers.get("accept", "")
    if "text/plain" in accept and "application/json" not in accept:
        return PlainTextResponse(source.content or "")
    return source
