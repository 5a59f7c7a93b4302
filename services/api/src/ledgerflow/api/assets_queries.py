"""Reads for ``/api/v2/assets`` (Airflow's response models) from the asset tables."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
from ledgerflow.api.schemas import Timestamp
from pydantic import BaseModel


class DagScheduleAssetReference(BaseModel):
    dag_id: str
    created_at: Timestamp
    updated_at: Timestamp


class TaskOutletAssetReference(BaseModel):
    dag_id: str
    task_id: str
    created_at: Timestamp
    updated_at: Timestamp


class TaskInletAssetReference(TaskOutletAssetReference):
    pass


class AssetAliasResponse(BaseModel):
    id: int
    name: str
    group: str


class AssetAliasCollectionResponse(BaseModel):
    asset_aliases: list[AssetAliasResponse]
    total_entries: int


class LastAssetEventResponse(BaseModel):
    id: int | None = None
    timestamp: Timestamp | None = None


class AssetResponse(BaseModel):
    id: int
    name: str
    uri: str
    group: str
    extra: dict[str, Any] | None = None
    created_at: Timestamp
    updated_at: Timestamp
    scheduled_dags: list[DagScheduleAssetReference]
    producing_tasks: list[TaskOutletAssetReference]
    consuming_tasks: list[TaskInletAssetReference]
    aliases: list[AssetAliasResponse]
    last_asset_event: LastAssetEventResponse | None = None


class AssetCollectionResponse(BaseModel):
    assets: list[AssetResponse]
    total_entries: int


class DagRunAssetReference(BaseModel):
    run_id: str
    dag_id: str
    logical_date: Timestamp | None
    start_date: Timestamp | None
    end_date: Timestamp | None
    state: str
    data_interval_start: Timestamp | None
    data_interval_end: Timestamp | None


class AssetEventResponse(BaseModel):
    id: int
    asset_id: int
    uri: str | None
    name: str | None
    group: str | None
    extra: dict[str, Any] | None
    source_task_id: str | None
    source_dag_id: str | None
    source_run_id: str | None
    source_map_index: int
    created_dagruns: list[DagRunAssetReference]
    timestamp: Timestamp


class AssetEventCollectionResponse(BaseModel):
    asset_events: list[AssetEventResponse]
    total_entries: int


ASSET_ORDERINGS = {
    "id": "a.id",
    "name": "a.name",
    "uri": "a.uri",
    "created_at": "a.created_at",
    "updated_at": "a.updated_at",
}
EVENT_ORDERINGS = {
    "id": "e.id",
    "timestamp": 'e."timestamp"',
    "source_dag_id": "e.source_dag_id",
    "source_task_id": "e.source_task_id",
    "source_run_id": "e.source_run_id",
    "source_map_index": "e.source_map_index",
    "asset_id": "e.asset_id",
}


def order_clause(order_by: str | None, allowed: dict[str, str], default: str) -> str | None:
    """``ORDER BY`` text for Airflow's ``order_by`` (``-`` for descending); None when
    the field is not allowed."""
    key = order_by or default
    desc = key.startswith("-")
    column = allowed.get(key.lstrip("-"))
    if column is None:
        return None
    tie = next(iter(allowed.values()))
    return f"{column} {'DESC' if desc else 'ASC'}, {tie} {'DESC' if desc else 'ASC'}"


def _like(pattern: str | None) -> str | None:
    """Airflow's ``*_pattern``: a substring match (``%``/``_`` wildcards allowed)."""
    return None if pattern is None else f"%{pattern}%"


async def list_assets(
    conn: asyncpg.Connection,
    *,
    limit: int,
    offset: int,
    name_pattern: str | None,
    uri_pattern: str | None,
    dag_ids: Sequence[str],
    only_active: bool,
    order: str,
) -> tuple[list[AssetResponse], int]:
    where = ["($1::text IS NULL OR a.name ILIKE $1)", "($2::text IS NULL OR a.uri ILIKE $2)"]
    if dag_ids:
        where.append(
            "(EXISTS (SELECT 1 FROM asset_dag_refs r WHERE r.asset_id = a.id AND r.dag_id = ANY($3))"
            " OR EXISTS (SELECT 1 FROM asset_task_refs r WHERE r.asset_id = a.id"
            " AND r.dag_id = ANY($3)))"
        )
    else:
        where.append("cardinality($3::text[]) = 0")
    if only_active:
        where.append(
            "(EXISTS (SELECT 1 FROM asset_dag_refs r WHERE r.asset_id = a.id)"
            " OR EXISTS (SELECT 1 FROM asset_task_refs r WHERE r.asset_id = a.id)"
            " OR EXISTS (SELECT 1 FROM asset_events e WHERE e.asset_id = a.id))"
        )
    sql_where = " AND ".join(where)
    args = (_like(name_pattern), _like(uri_pattern), list(dag_ids))
    total = await conn.fetchval(f"SELECT count(*) FROM assets a WHERE {sql_where}", *args)
    rows = await conn.fetch(
        f"SELECT a.* FROM assets a WHERE {sql_where} ORDER BY {order} LIMIT $4 OFFSET $5",
        *args,
        limit,
        offset,
    )
    return [await _asset(conn, r) for r in rows], int(total)


async def get_asset(conn: asyncpg.Connection, asset_id: int) -> AssetResponse | None:
    row = await conn.fetchrow("SELECT * FROM assets WHERE id = $1", asset_id)
    return await _asset(conn, row) if row is not None else None


async def _asset(conn: asyncpg.Connection, row: asyncpg.Record) -> AssetResponse:
    aid = row["id"]
    scheduled = await conn.fetch(
        "SELECT dag_id, created_at, updated_at FROM asset_dag_refs WHERE asset_id = $1"
        " UNION SELECT d.dag_id, a.created_at, a.updated_at FROM asset_alias_dag_refs d"
        " JOIN asset_alias_assets aa ON aa.alias_id = d.alias_id"
        " JOIN assets a ON a.id = aa.asset_id WHERE aa.asset_id = $1 ORDER BY 1",
        aid,
    )
    tasks = await conn.fetch(
        "SELECT dag_id, task_id, kind, created_at, updated_at FROM asset_task_refs"
        " WHERE asset_id = $1 ORDER BY dag_id, task_id",
        aid,
    )
    aliases = await conn.fetch(
        'SELECT l.id, l.name, l."group" FROM asset_aliases l'
        " JOIN asset_alias_assets aa ON aa.alias_id = l.id WHERE aa.asset_id = $1 ORDER BY l.id",
        aid,
    )
    last = await conn.fetchrow(
        'SELECT id, "timestamp" FROM asset_events WHERE asset_id = $1'
        ' ORDER BY "timestamp" DESC, id DESC LIMIT 1',
        aid,
    )
    return AssetResponse(
        id=aid,
        name=row["name"],
        uri=row["uri"],
        group=row["group"],
        extra=row["extra"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        scheduled_dags=[DagScheduleAssetReference(**dict(r)) for r in scheduled],
        producing_tasks=[
            TaskOutletAssetReference(
                **{k: r[k] for k in ("dag_id", "task_id", "created_at", "updated_at")}
            )
            for r in tasks
            if r["kind"] == "outlet"
        ],
        consuming_tasks=[
            TaskInletAssetReference(
                **{k: r[k] for k in ("dag_id", "task_id", "created_at", "updated_at")}
            )
            for r in tasks
            if r["kind"] == "inlet"
        ],
        aliases=[AssetAliasResponse(**dict(r)) for r in aliases],
        last_asset_event=LastAssetEventResponse(id=last["id"], timestamp=last["timestamp"])
        if last
        else None,
    )


async def list_events(
    conn: asyncpg.Connection,
    *,
    limit: int,
    offset: int,
    order: str,
    asset_id: int | None,
    source_dag_id: str | None,
    source_task_id: str | None,
    source_run_id: str | None,
    source_map_index: int | None,
    name_pattern: str | None,
    timestamp_gte: datetime | None,
    timestamp_lte: datetime | None,
) -> tuple[list[AssetEventResponse], int]:
    sql_where = (
        "($1::bigint IS NULL OR e.asset_id = $1) AND ($2::text IS NULL OR e.source_dag_id = $2)"
        " AND ($3::text IS NULL OR e.source_task_id = $3)"
        " AND ($4::text IS NULL OR e.source_run_id = $4)"
        " AND ($5::int IS NULL OR e.source_map_index = $5)"
        " AND ($6::text IS NULL OR a.name ILIKE $6)"
        ' AND ($7::timestamptz IS NULL OR e."timestamp" >= $7)'
        ' AND ($8::timestamptz IS NULL OR e."timestamp" <= $8)'
    )
    args = (
        asset_id,
        source_dag_id,
        source_task_id,
        source_run_id,
        source_map_index,
        _like(name_pattern),
        timestamp_gte,
        timestamp_lte,
    )
    base = f"FROM asset_events e JOIN assets a ON a.id = e.asset_id WHERE {sql_where}"
    total = await conn.fetchval(f"SELECT count(*) {base}", *args)
    rows = await conn.fetch(
        f'SELECT e.*, a.name, a.uri, a."group" {base} ORDER BY {order} LIMIT $9 OFFSET $10',
        *args,
        limit,
        offset,
    )
    return [await _event(conn, r) for r in rows], int(total)


async def get_event_by_event_id(
    conn: asyncpg.Connection, event_id: str
) -> AssetEventResponse | None:
    row = await conn.fetchrow(
        'SELECT e.*, a.name, a.uri, a."group" FROM asset_events e'
        " JOIN assets a ON a.id = e.asset_id WHERE e.event_id = $1",
        event_id,
    )
    return await _event(conn, row) if row is not None else None


async def _event(conn: asyncpg.Connection, row: asyncpg.Record) -> AssetEventResponse:
    runs = await conn.fetch(
        "SELECT r.run_id, r.dag_id, r.logical_date, r.start_date, r.end_date, r.state"
        " FROM asset_event_dag_runs l JOIN dag_runs r ON r.dag_id = l.dag_id AND r.run_id = l.run_id"
        " WHERE l.event_id = $1 ORDER BY r.queued_at, r.run_id",
        row["event_id"],
    )
    return AssetEventResponse(
        id=row["id"],
        asset_id=row["asset_id"],
        uri=row["uri"],
        name=row["name"],
        group=row["group"],
        extra=row["extra"],
        source_task_id=row["source_task_id"],
        source_dag_id=row["source_dag_id"],
        source_run_id=row["source_run_id"],
        source_map_index=row["source_map_index"],
        created_dagruns=[
            DagRunAssetReference(
                **dict(r),
                data_interval_start=r["logical_date"],
                data_interval_end=r["logical_date"],
            )
            for r in runs
        ],
        timestamp=row["timestamp"],
    )


async def list_aliases(
    conn: asyncpg.Connection, *, limit: int, offset: int, name_pattern: str | None, order: str
) -> tuple[list[AssetAliasResponse], int]:
    pattern = _like(name_pattern)
    total = await conn.fetchval(
        "SELECT count(*) FROM asset_aliases a WHERE ($1::text IS NULL OR a.name ILIKE $1)", pattern
    )
    rows = await conn.fetch(
        'SELECT a.id, a.name, a."group" FROM asset_aliases a'
        f" WHERE ($1::text IS NULL OR a.name ILIKE $1) ORDER BY {order} LIMIT $2 OFFSET $3",
        pattern,
        limit,
        offset,
    )
    return [AssetAliasResponse(**dict(r)) for r in rows], int(total)


async def producing_dags(conn: asyncpg.Connection, asset_id: int) -> list[str]:
    """DAGs with a task that has the asset as an outlet (what materialize triggers)."""
    rows = await conn.fetch(
        "SELECT DISTINCT dag_id FROM asset_task_refs WHERE asset_id = $1 AND kind = 'outlet'"
        " ORDER BY dag_id",
        asset_id,
    )
    return [r["dag_id"] for r in rows]
