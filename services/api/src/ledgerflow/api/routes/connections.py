"""Connections (``/api/v2/connections``): Airflow REST API v2 paths, bodies and errors.

Reads come from the projection; writes publish ``ConnectionSet`` / ``ConnectionDeleted``
on the config topic and answer at once (see :mod:`.variables` for the headers). The
password is never returned (``***`` when set). Testing connections is disabled, as in
Airflow's default configuration. Permissions: as for variables (reads: viewer, writes: op).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Response, status
from ledgerflow.api.config_schemas import (
    BulkBody,
    BulkResponse,
    ConnectionBody,
    ConnectionCollectionResponse,
    ConnectionResponse,
    ConnectionTestResponse,
)
from ledgerflow.api.connections_service import ConnectionService
from ledgerflow.api.deps import Connection, Context, writes_require
from ledgerflow.api.routes.variables import (
    Limit,
    Offset,
    OrderBy,
    Publisher,
    UpdateMask,
    mark_written,
)
from ledgerflow.api.schemas import ErrorResponse
from ledgerflow.common.secrets import Cipher

router = APIRouter(prefix="/connections", tags=["Connection"], dependencies=[writes_require("op")])


def _service(conn: Connection, ctx: Context, publisher: Publisher) -> ConnectionService:
    return ConnectionService(conn, Cipher.from_settings(ctx.settings), publisher)


Service = Annotated[ConnectionService, Depends(_service)]


@router.get("", response_model=ConnectionCollectionResponse)
async def get_connections(
    service: Service,
    limit: Limit = 50,
    offset: Offset = 0,
    order_by: OrderBy = None,
    connection_id_pattern: str | None = None,
) -> ConnectionCollectionResponse:
    return await service.list(
        limit=limit,
        offset=offset,
        order_by=order_by or ["conn_id"],
        id_pattern=connection_id_pattern,
    )


@router.post(
    "",
    response_model=ConnectionResponse,
    status_code=status.HTTP_201_CREATED,
    responses={409: {"model": ErrorResponse}},
)
async def post_connection(
    body: ConnectionBody, service: Service, publisher: Publisher, response: Response
) -> ConnectionResponse:
    created = await service.create(body)
    mark_written(response, publisher)
    return created


@router.patch("", response_model=BulkResponse)
async def bulk_connections(
    body: BulkBody[ConnectionBody], service: Service, publisher: Publisher, response: Response
) -> BulkResponse:
    """Create, update and delete connections in one request (Airflow's bulk body)."""
    result = await service.bulk(body)
    mark_written(response, publisher)
    return result


@router.post(
    "/test", response_model=ConnectionTestResponse, responses={403: {"model": ErrorResponse}}
)
async def test_connection(body: ConnectionBody) -> ConnectionTestResponse:
    """Disabled, as in Airflow by default: a test would run provider code in the API."""
    raise HTTPException(
        status.HTTP_403_FORBIDDEN,
        "Testing connections is disabled in ledgerflow (as in Airflow's default "
        "configuration): the API server does not run provider code. Run a task that uses "
        "the connection instead.",
    )


@router.get(
    "/{connection_id}",
    response_model=ConnectionResponse,
    responses={404: {"model": ErrorResponse}},
)
async def get_connection(connection_id: str, service: Service) -> ConnectionResponse:
    return await service.get(connection_id)


@router.patch(
    "/{connection_id}",
    response_model=ConnectionResponse,
    responses={400: {"model": ErrorResponse}, 404: {"model": ErrorResponse}},
)
async def patch_connection(
    connection_id: str,
    body: ConnectionBody,
    service: Service,
    publisher: Publisher,
    response: Response,
    update_mask: UpdateMask = None,
) -> ConnectionResponse:
    updated = await service.patch(connection_id, body, update_mask)
    mark_written(response, publisher)
    return updated


@router.delete(
    "/{connection_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"model": ErrorResponse}},
)
async def delete_connection(connection_id: str, service: Service, publisher: Publisher) -> Response:
    await service.delete(connection_id)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    mark_written(response, publisher)
    return response
