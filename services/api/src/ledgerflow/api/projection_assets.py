"""Projector handlers for assets (ADR 0013), registered from :mod:`.projection`.

- ``AssetEventEmitted`` (assets topic): the asset (created if an event names one no DAG
  declares, e.g. one added through an alias), the event row (first copy wins), and the
  aliases it came through.
- ``DagVersionPublished``: the DAG's asset references are replaced by the new
  version's: the assets and aliases it is scheduled on, the tasks' outlets and inlets.
- ``DagRunQueued``: an asset-triggered run is recorded against its triggering events
  (Airflow's ``created_dagruns``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from ledgerflow.api.projection_base import planned_sql
from ledgerflow.common import events as ev
from ledgerflow.common.dagmodel import AssetCondition, AssetRef, SerializedDag

Handler = Callable[[asyncpg.Connection, ev.Envelope], Awaitable[None]]

_UPSERT_ASSET = """
INSERT INTO assets AS a (name, uri, "group", extra, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $5)
ON CONFLICT (name) DO UPDATE SET
    uri = CASE WHEN $6 THEN EXCLUDED.uri ELSE a.uri END,
    "group" = CASE WHEN $6 THEN EXCLUDED."group" ELSE a."group" END,
    extra = CASE WHEN $6 AND EXCLUDED.extra <> '{}'::jsonb THEN EXCLUDED.extra ELSE a.extra END,
    created_at = LEAST(a.created_at, EXCLUDED.created_at),
    updated_at = GREATEST(a.updated_at, EXCLUDED.updated_at)
RETURNING id
"""

_UPSERT_ALIAS = """
INSERT INTO asset_aliases (name, "group") VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET "group" = EXCLUDED."group"
RETURNING id
"""

_INSERT_EVENT = """
INSERT INTO asset_events (event_id, asset_id, extra, source_dag_id, source_task_id,
                          source_run_id, source_map_index, source_aliases, created_by,
                          "timestamp")
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (event_id) DO NOTHING
"""


async def upsert_asset(
    conn: asyncpg.Connection,
    *,
    name: str,
    uri: str,
    group: str,
    extra: dict[str, Any],
    at: Any,
    definition: bool,
) -> int:
    """The asset's id; ``definition``: the DAG file's declaration (uri, group and a
    non-empty extra replace the stored ones), not just an event naming it."""
    return int(
        await conn.fetchval(
            _UPSERT_ASSET, name, uri or name, group or "asset", extra, at, definition
        )
    )


async def _asset_event(conn: asyncpg.Connection, env: ev.Envelope) -> None:
    p: ev.AssetEventEmitted = env.data
    asset_id = await upsert_asset(
        conn, name=p.name, uri=p.uri, group=p.group, extra={}, at=p.timestamp, definition=False
    )
    await conn.execute(
        _INSERT_EVENT,
        env.id,
        asset_id,
        p.extra,
        p.source_dag_id,
        p.source_task_id,
        p.source_run_id,
        p.source_map_index,
        list(p.source_aliases),
        p.created_by,
        p.timestamp,
    )
    for alias in p.source_aliases:
        alias_id = await conn.fetchval(_UPSERT_ALIAS, alias, "asset")
        await conn.execute(
            "INSERT INTO asset_alias_assets (alias_id, asset_id) VALUES ($1, $2)"
            " ON CONFLICT DO NOTHING",
            alias_id,
            asset_id,
        )


def _leaves(cond: AssetCondition | None) -> list[AssetRef]:
    out: list[AssetRef] = []
    stack = [cond] if cond is not None else []
    while stack:
        c = stack.pop()
        if c.asset is not None:
            out.append(c.asset)
        stack.extend(c.children)
    return out


async def replace_dag_refs(conn: asyncpg.Connection, dag: SerializedDag, at: Any) -> None:
    """The DAG's asset references, as its newest version declares them."""
    await conn.execute("DELETE FROM asset_dag_refs WHERE dag_id = $1", dag.dag_id)
    await conn.execute("DELETE FROM asset_task_refs WHERE dag_id = $1", dag.dag_id)
    await conn.execute("DELETE FROM asset_alias_dag_refs WHERE dag_id = $1", dag.dag_id)

    async def asset_id(ref: AssetRef) -> int:
        return await upsert_asset(
            conn,
            name=ref.name,
            uri=ref.uri,
            group=ref.group,
            extra=dict(ref.extra),
            at=at,
            definition=True,
        )

    for ref in _leaves(dag.asset_condition):
        if ref.kind == "alias":
            alias_id = await conn.fetchval(_UPSERT_ALIAS, ref.name, ref.group)
            await conn.execute(
                "INSERT INTO asset_alias_dag_refs (alias_id, dag_id) VALUES ($1, $2)"
                " ON CONFLICT DO NOTHING",
                alias_id,
                dag.dag_id,
            )
            continue
        await conn.execute(
            "INSERT INTO asset_dag_refs (asset_id, dag_id, created_at, updated_at)"
            " VALUES ($1, $2, $3, $3) ON CONFLICT DO NOTHING",
            await asset_id(ref),
            dag.dag_id,
            at,
        )
    for task in dag.tasks:
        for kind, refs in (("outlet", task.outlets), ("inlet", task.inlets)):
            for ref in refs:
                if ref.kind == "alias":
                    await conn.fetchval(_UPSERT_ALIAS, ref.name, ref.group)
                    continue
                await conn.execute(
                    "INSERT INTO asset_task_refs (asset_id, dag_id, task_id, kind, created_at,"
                    " updated_at) VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT DO NOTHING",
                    await asset_id(ref),
                    dag.dag_id,
                    task.task_id,
                    kind,
                    at,
                )


def with_asset_refs(original: Handler) -> Handler:
    """``DagVersionPublished``: the original handler, then the asset references."""

    async def handler(conn: asyncpg.Connection, env: ev.Envelope) -> None:
        await original(conn, env)
        p: ev.DagVersionPublished = env.data
        await replace_dag_refs(conn, p.dag, env.time)

    return handler


def without_asset_refs(original: Handler) -> Handler:
    """``DagDeleted``: the original handler, then the DAG's asset references go (the
    assets and their events stay, as in Airflow)."""

    async def handler(conn: asyncpg.Connection, env: ev.Envelope) -> None:
        await original(conn, env)
        dag_id = env.data.dag_id
        for table in ("asset_dag_refs", "asset_task_refs", "asset_alias_dag_refs"):
            await conn.execute(f"DELETE FROM {table} WHERE dag_id = $1", dag_id)

    return handler


_LINK_CREATED_RUN = planned_sql(
    "INSERT INTO asset_event_dag_runs (event_id, dag_id, run_id) VALUES ($1, $2, $3)"
    " ON CONFLICT DO NOTHING"
)


def created_runs_plan(env: ev.Envelope) -> list[tuple[str, tuple[Any, ...]]]:
    """Statements linking an asset-triggered run to its triggering events."""
    p: ev.DagRunQueued = env.data
    return [
        (_LINK_CREATED_RUN, (str(e["id"]), p.dag_id, p.run_id))
        for e in p.triggering_asset_events
        if isinstance(e, dict) and e.get("id")
    ]


ASSET_HANDLERS: dict[type[Any], Handler] = {ev.AssetEventEmitted: _asset_event}
"""Registered in :data:`ledgerflow.api.projection._HANDLERS` (a few lines there)."""
