"""Variables (``/api/v2/variables``): Airflow REST API v2 paths, bodies and errors.

Reads come from the projection; writes publish ``VariableSet`` / ``VariableDeleted`` on
the config topic and answer at once with the written variable (before the projection
has it). The ``Ledgerflow-Event-Id`` and ``Ledgerflow-Event-Position``
(``topic:partition:offset``) headers say where the write landed.

Permissions: reads need the viewer role, writes the op role (``writes_require``).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from ledgerflow.api.config_schemas import (
    BulkBody,
    BulkResponse,
    VariableBody,
    VariableCollectionResponse,
    VariableResponse,
)
from ledgerflow.api.config_store import ConfigPublisher
from ledgerflow.api.deps import Connection, Context, CurrentUser, writes_require
from ledgerflow.api.schemas import ErrorResponse
from ledgerflow.api.variables_service import VariableService
from ledgerflow.common.secrets import Cipher

router = APIRouter(prefix="/variables", tags=["Variable"], dependencies=[writes_require("op")])

Limit = Annotated[int, Query(ge=0, le=1000)]
Offset = Annotated[int, Query(ge=0)]
UpdateMask = Annotated[list[str] | None, Query()]
OrderBy = Annotated[list[str] | None, Query()]


def request_id(request: Request) -> str:
    """The client's id for this request (so a retry is recognised), or a new one."""
    return (
        request.headers.get("x-request-id")
        or request.headers.get("idempotency-key")
        or str(uuid.uuid4())
    )


def publisher_for(request: Request, ctx: Context, user: CurrentUser) -> ConfigPublisher:
    return ConfigPublisher(
        ctx.producer, ctx.settings.topics.config, user=user, request_id=request_id(request)
    )


Publisher = Annotated[ConfigPublisher, Depends(publisher_for)]


def mark_written(response: Response, publisher: ConfigPublisher) -> None:
    """Headers naming the last fact this request wrote."""
    if publisher.written:
        last = publisher.written[-1]
        response.headers["Ledgerflow-Event-Id"] = last.event_id
        response.headers["Ledgerflow-Event-Position"] = last.position


def _service(conn: Connection, ctx: Context, publisher: Publisher) -> VariableService:
    return VariableService(conn, Cipher.from_settings(ctx.settings), publisher)


Service = Annotated[VariableService, Depends(_service)]


@router.get("", response_model=VariableCollectionResponse)
async def get_variables(
    service: Service,
    limit: Limit = 50,
    offset: Offset = 0,
    order_by: OrderBy = None,
    variable_key_pattern: str | None = None,
) -> VariableCollectionResponse:
    """Variables, sensitive values shown as ``***``. ``variable_key_pattern`` matches
    keys case-insensitively anywhere (SQL ``LIKE`` wildcards allowed)."""
    return await service.list(
        limit=limit,
        offset=offset,
        order_by=order_by or ["key"],
        key_pattern=variable_key_pattern,
    )


@router.post(
    "",
    response_model=VariableResponse,
    status_code=status.HTTP_201_CREATED,
    responses={409: {"model": ErrorResponse}},
)
async def post_variable(
    body: VariableBody, service: Service, publisher: Publisher, response: Response
) -> VariableResponse:
    created = await service.create(body)
    mark_written(response, publisher)
    return created


@router.patch("", response_model=BulkResponse)
async def bulk_variables(
    body: BulkBody[VariableBody], service: Service, publisher: Publisher, response: Response
) -> BulkResponse:
    """Create, update and delete variables in one request (Airflow's bulk body)."""
    result = await service.bulk(body)
    mark_written(response, publisher)
    return result


@router.get(
    "/{variable_key:path}",
    response_model=VariableResponse,
    responses={404: {"model": ErrorResponse}},
)
async def get_variable(variable_key: str, service: Service) -> VariableResponse:
    return await service.get(variable_key)


@router.patch(
    "/{variable_key:path}",
    response_model=VariableResponse,
    responses={400: {"model": ErrorResponse}, 404: {"model": ErrorResponse}},
)
async def patch_variable(
    variable_key: str,
    body: VariableBody,
    service: Service,
    publisher: Publisher,
    response: Response,
    update_mask: UpdateMask = None,
) -> VariableResponse:
    updated = await service.patch(variable_key, body, update_mask)
    mark_written(response, publisher)
    return updated


@router.delete(
    "/{variable_key:path}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"model": ErrorResponse}},
)
async def delete_variable(variable_key: str, service: Service, publisher: Publisher) -> Response:
    await service.delete(variable_key)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    mark_written(response, publisher)
    return response
