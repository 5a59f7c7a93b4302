"""Pools (``/api/v2/pools``): Airflow REST API v2 paths, bodies and errors.

Reads come from the projection (slots and their occupancy); writes publish ``PoolSet``
/ ``PoolDeleted`` on the config topic (key ``pool:<name>``) and answer at once, with
the ``Ledgerflow-Event-Id``/``-Position`` headers. The scheduler's pool arbiter reads
the same facts (ADR 0011). ``default_pool`` (128 slots until set) cannot be deleted.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status
from ledgerflow.api import pools_queries
from ledgerflow.api.deps import Connection, writes_require
from ledgerflow.api.pools_queries import PoolCollectionResponse, PoolResponse
from ledgerflow.api.routes.variables import Publisher, mark_written
from ledgerflow.api.schemas import ErrorResponse
from ledgerflow.common import events as ev
from pydantic import BaseModel, ConfigDict, Field

router = APIRouter(prefix="/pools", tags=["Pool"], dependencies=[writes_require("op")])

DEFAULT_POOL = "default_pool"


class PoolBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=256)
    slots: int = Field(ge=-1)
    description: str | None = None
    include_deferred: bool = False


class PoolPatchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pool: str | None = Field(default=None, description="The pool's name (cannot change)")
    slots: int | None = Field(default=None, ge=-1)
    description: str | None = None
    include_deferred: bool | None = None


def pool_not_found(name: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"The Pool with name: `{name}` was not found")


def _written(body: PoolBody, before: PoolResponse | None) -> PoolResponse:
    """The pool as the write leaves it (occupancy as last projected)."""
    occupied = before.occupied_slots if before else 0
    return PoolResponse(
        name=body.name,
        slots=body.slots,
        description=body.description,
        include_deferred=body.include_deferred,
        occupied_slots=occupied,
        running_slots=before.running_slots if before else 0,
        queued_slots=before.queued_slots if before else 0,
        scheduled_slots=before.scheduled_slots if before else 0,
        open_slots=-1 if body.slots < 0 else body.slots - occupied,
        deferred_slots=before.deferred_slots if before else 0,
    )


async def _publish(publisher: Publisher, body: PoolBody) -> None:
    data = ev.PoolSet(
        name=body.name,
        slots=body.slots,
        description=body.description,
        include_deferred=body.include_deferred,
        set_by=publisher.user,
    )
    await publisher.publish(data, f"pool:{body.name}")


@router.get("", response_model=PoolCollectionResponse)
async def get_pools(
    conn: Connection,
    limit: Annotated[int, Query(ge=0, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    pool_name_pattern: str | None = None,
) -> PoolCollectionResponse:
    return await pools_queries.list_pools(
        conn, limit=limit, offset=offset, pattern=pool_name_pattern
    )


@router.get("/{pool_name}", response_model=PoolResponse, responses={404: {"model": ErrorResponse}})
async def get_pool(pool_name: str, conn: Connection) -> PoolResponse:
    found = await pools_queries.get_pool(conn, pool_name)
    if found is None:
        raise pool_not_found(pool_name)
    return found


@router.post(
    "",
    response_model=PoolResponse,
    status_code=status.HTTP_201_CREATED,
    responses={409: {"model": ErrorResponse}},
)
async def post_pool(
    body: PoolBody, conn: Connection, publisher: Publisher, response: Response
) -> PoolResponse:
    if await pools_queries.get_pool(conn, body.name) is not None:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"The Pool with name: `{body.name}` already exists"
        )
    await _publish(publisher, body)
    mark_written(response, publisher)
    return _written(body, None)


@router.patch(
    "/{pool_name}",
    response_model=PoolResponse,
    responses={400: {"model": ErrorResponse}, 404: {"model": ErrorResponse}},
)
async def patch_pool(
    pool_name: str,
    body: PoolPatchBody,
    conn: Connection,
    publisher: Publisher,
    response: Response,
    update_mask: Annotated[list[str] | None, Query()] = None,
) -> PoolResponse:
    before = await pools_queries.get_pool(conn, pool_name)
    if before is None:
        raise pool_not_found(pool_name)
    if body.pool is not None and body.pool != pool_name:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "The pool's name cannot be changed")
    given = body.model_dump(exclude_unset=True)
    fields = set(update_mask) if update_mask else set(given) - {"pool"}
    unknown = fields - {"slots", "description", "include_deferred"}
    if unknown:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f"Invalid field(s) in update mask: {sorted(unknown)}"
        )
    merged = PoolBody(
        name=pool_name,
        slots=given["slots"] if "slots" in fields and body.slots is not None else before.slots,
        description=body.description if "description" in fields else before.description,
        include_deferred=(
            bool(body.include_deferred)
            if "include_deferred" in fields and body.include_deferred is not None
            else before.include_deferred
        ),
    )
    await _publish(publisher, merged)
    mark_written(response, publisher)
    return _written(merged, before)


@router.delete(
    "/{pool_name}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={400: {"model": ErrorResponse}, 404: {"model": ErrorResponse}},
)
async def delete_pool(pool_name: str, conn: Connection, publisher: Publisher) -> Response:
    if pool_name == DEFAULT_POOL:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "Default Pool can't be deleted")
    if await pools_queries.get_pool(conn, pool_name) is None:
        raise pool_not_found(pool_name)
    await publisher.publish(
        ev.PoolDeleted(name=pool_name, deleted_by=publisher.user), f"pool:{pool_name}"
    )
    out = Response(status_code=status.HTTP_204_NO_CONTENT)
    mark_written(out, publisher)
    return out
