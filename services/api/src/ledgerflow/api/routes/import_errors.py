"""Import errors (``/api/v2/importErrors``): DAG files that failed to parse when they
were submitted, the latest failure per file, gone once the file parses again."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status
from ledgerflow.api import catalog_queries
from ledgerflow.api.airflow_models import ImportErrorCollectionResponse, ImportErrorResponse
from ledgerflow.api.deps import Connection
from ledgerflow.api.routes.dags import Limit, Offset
from ledgerflow.api.schemas import ErrorResponse

router = APIRouter(prefix="/importErrors", tags=["Import Error"])

_ORDER = "^-?(" + "|".join(k for k in catalog_queries.IMPORT_ERROR_ORDERINGS if k[0] != "-") + ")$"


@router.get("", response_model=ImportErrorCollectionResponse)
async def list_import_errors(
    conn: Connection,
    limit: Limit = 100,
    offset: Offset = 0,
    order_by: Annotated[str, Query(pattern=_ORDER)] = "id",
    filename_pattern: str | None = None,
) -> ImportErrorCollectionResponse:
    return await catalog_queries.list_import_errors(
        conn, limit=limit, offset=offset, order_by=order_by, filename_pattern=filename_pattern
    )


@router.get(
    "/{import_error_id}",
    response_model=ImportErrorResponse,
    responses={404: {"model": ErrorResponse}},
)
async def get_import_error(
    import_error_id: Annotated[int, Path(ge=0, le=2**63 - 1)], conn: Connection
) -> ImportErrorResponse:
    found = await catalog_queries.get_import_error(conn, import_error_id)
    if found is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"The ImportError with import_error_id: `{import_error_id}` was not found",
        )
    return found
