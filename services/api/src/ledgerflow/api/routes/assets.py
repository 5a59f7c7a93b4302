"""Assets (``/api/v2/assets``): Airflow REST API v2 paths, bodies and errors (ADR 0013).

Reads come from the asset tables of the projection. ``POST /assets/events`` publishes
an ``AssetEventEmitted`` on the assets topic (``created_by`` the caller), which every
scheduler reads to trigger the DAGs scheduled on the asset, and answers once the
projection has it. ``POST /assets/{asset_id}/materialize`` triggers the one DAG that
produces the asset (404 when none does, 409 when several do).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Path, Query, status
from ledgerflow.api import assets_queries as q
from ledgerflow.api.deps import Connection, Context, CurrentUser, writes_require
from ledgerflow.api.routes import dag_runs
from ledgerflow.api.schemas import DagRunResponse, ErrorResponse, TriggerDagRunBody
from ledgerflow.common import events as ev
from pydantic import BaseModel, ConfigDict, Field

router = APIRouter(prefix="/assets", tags=["Asset"], dependencies=[writes_require("user")])

SOURCE = "ledgerflow/api"
PROJECTION_WAIT_S = 10.0

BIGINT_MAX = 2**63 - 1
Limit = Annotated[int, Query(ge=0, le=1000)]
Offset = Annotated[int, Query(ge=0, le=BIGINT_MAX)]
AssetId = Annotated[int, Path(ge=1, le=BIGINT_MAX)]


class CreateAssetEventsBody(BaseModel):
    """Airflow's ``CreateAssetEventsBody``."""

    model_config = ConfigDict(extra="forbid")
    asset_id: int = Field(ge=1, le=BIGINT_MAX)
    extra: dict[str, Any] = Field(default_factory=dict)


class MaterializeAssetBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dag_run_id: str | None = Field(default=None, min_length=1, max_length=250)
    logical_date: datetime | None = None
    conf: dict[str, Any] = Field(default_factory=dict)
    note: str | None = None


def _order(order_by: str | None, allowed: dict[str, str], default: str) -> str:
    clause = q.order_clause(order_by, allowed, default)
    if clause is None:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"Ordering with '{order_by}' is disallowed or the attribute does not exist on the "
            f"model; order_by may be one of {', '.join(sorted(allowed))} (with '-' to reverse)",
        )
    return str(clause)


def asset_not_found(asset_id: int) -> HTTPException:
    return HTTPException(
        status.HTTP_404_NOT_FOUND, f"The Asset with ID: `{asset_id}` was not found"
    )


@router.get("", response_model=q.AssetCollectionResponse)
async def get_assets(
    conn: Connection,
    limit: Limit = 50,
    offset: Offset = 0,
    name_pattern: str | None = None,
    uri_pattern: str | None = None,
    dag_ids: Annotated[list[str] | None, Query()] = None,
    only_active: bool = True,
    order_by: str | None = None,
) -> q.AssetCollectionResponse:
    """Assets, with the DAGs scheduled on them and the tasks producing and reading them.
    ``only_active``: assets some DAG references or that have events."""
    order = _order(order_by, q.ASSET_ORDERINGS, "id")
    assets, total = await q.list_assets(
        conn,
        limit=limit,
        offset=offset,
        name_pattern=name_pattern,
        uri_pattern=uri_pattern,
        dag_ids=[d for item in dag_ids or [] for d in item.split(",") if d],
        only_active=only_active,
        order=order,
    )
    return q.AssetCollectionResponse(assets=assets, total_entries=total)


@router.get("/events", response_model=q.AssetEventCollectionResponse)
async def get_asset_events(
    conn: Connection,
    limit: Limit = 50,
    offset: Offset = 0,
    order_by: str | None = None,
    asset_id: Annotated[int | None, Query(ge=1, le=BIGINT_MAX)] = None,
    source_dag_id: str | None = None,
    source_task_id: str | None = None,
    source_run_id: str | None = None,
    source_map_index: Annotated[int | None, Query(ge=-1, le=2**31 - 1)] = None,
    name_pattern: str | None = None,
    timestamp_gte: datetime | None = None,
    timestamp_lte: datetime | None = None,
) -> q.AssetEventCollectionResponse:
    order = _order(order_by, q.EVENT_ORDERINGS, "timestamp")
    for name, value in (("timestamp_gte", timestamp_gte), ("timestamp_lte", timestamp_lte)):
        if value is not None and value.tzinfo is None:
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST, f"{name} must carry a UTC offset: {value}"
            )
    events, total = await q.list_events(
        conn,
        limit=limit,
        offset=offset,
        order=order,
        asset_id=asset_id,
        source_dag_id=source_dag_id,
        source_task_id=source_task_id,
        source_run_id=source_run_id,
        source_map_index=source_map_index,
        name_pattern=name_pattern,
        timestamp_gte=timestamp_gte,
        timestamp_lte=timestamp_lte,
    )
    return q.AssetEventCollectionResponse(asset_events=events, total_entries=total)


@router.post(
    "/events",
    response_model=q.AssetEventResponse,
    responses={404: {"model": ErrorResponse}, 503: {"model": ErrorResponse}},
)
async def create_asset_event(
    body: CreateAssetEventsBody, conn: Connection, ctx: Context, user: CurrentUser
) -> q.AssetEventResponse:
    """An asset event from outside (Airflow's "create asset event"): DAGs scheduled on
    the asset run as if a task had updated it."""
    asset = await q.get_asset(conn, body.asset_id)
    if asset is None:
        raise asset_not_found(body.asset_id)
    now = datetime.now(UTC)
    envelope = ev.make_envelope(
        ev.AssetEventEmitted(
            name=asset.name,
            uri=asset.uri,
            group=asset.group,
            extra=body.extra,
            created_by=user,
            timestamp=now,
        ),
        id=str(uuid.uuid4()),
        source=SOURCE,
        time=now,
        aggregate_key=asset.name,
    )
    await ctx.producer.send(ctx.settings.topics.assets, envelope)
    deadline = asyncio.get_running_loop().time() + PROJECTION_WAIT_S
    while True:
        async with ctx.pool.acquire() as read:
            found = await q.get_event_by_event_id(read, envelope.id)
        if found is not None:
            return found
        if asyncio.get_running_loop().time() >= deadline:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                f"the asset event {envelope.id} was written but is not projected yet; "
                "list /assets/events later",
            )
        await asyncio.sleep(0.05)


@router.get("/aliases", response_model=q.AssetAliasCollectionResponse)
async def get_asset_aliases(
    conn: Connection,
    limit: Limit = 50,
    offset: Offset = 0,
    name_pattern: str | None = None,
    order_by: str | None = None,
) -> q.AssetAliasCollectionResponse:
    order = _order(order_by, {"id": "a.id", "name": "a.name"}, "id")
    aliases, total = await q.list_aliases(
        conn, limit=limit, offset=offset, name_pattern=name_pattern, order=order
    )
    return q.AssetAliasCollectionResponse(asset_aliases=aliases, total_entries=total)


@router.get(
    "/aliases/{asset_alias_id}",
    response_model=q.AssetAliasResponse,
    responses={404: {"model": ErrorResponse}},
)
async def get_asset_alias(
    asset_alias_id: Annotated[int, Path(ge=1, le=BIGINT_MAX)], conn: Connection
) -> q.AssetAliasResponse:
    row = await conn.fetchrow(
        'SELECT id, name, "group" FROM asset_aliases WHERE id = $1', asset_alias_id
    )
    if row is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"The Asset Alias with ID: `{asset_alias_id}` was not found",
        )
    return q.AssetAliasResponse(**dict(row))


@router.get(
    "/{asset_id}", response_model=q.AssetResponse, responses={404: {"model": ErrorResponse}}
)
async def get_asset(asset_id: AssetId, conn: Connection) -> q.AssetResponse:
    asset = await q.get_asset(conn, asset_id)
    if asset is None:
        raise asset_not_found(asset_id)
    return asset


@router.post(
    "/{asset_id}/materialize",
    response_model=DagRunResponse,
    responses={404: {"model": ErrorResponse}, 409: {"model": ErrorResponse}},
)
async def materialize_asset(
    asset_id: AssetId,
    conn: Connection,
    ctx: Context,
    user: CurrentUser,
    body: Annotated[MaterializeAssetBody | None, Body()] = None,
) -> DagRunResponse:
    """Trigger the DAG whose task produces the asset (Airflow 3.1)."""
    if await q.get_asset(conn, asset_id) is None:
        raise asset_not_found(asset_id)
    dags = await q.producing_dags(conn, asset_id)
    if not dags:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"No DAG materializes asset with ID: {asset_id}"
        )
    if len(dags) > 1:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"More than one DAG materializes asset with ID: {asset_id}: {', '.join(dags)}",
        )
    b = body or MaterializeAssetBody()
    trigger = TriggerDagRunBody(
        dag_run_id=b.dag_run_id, logical_date=b.logical_date, conf=b.conf, note=b.note
    )
    return await dag_runs.trigger_dag_run(dags[0], trigger, conn, ctx, user)
