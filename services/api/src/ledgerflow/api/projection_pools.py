"""Projector handlers for pools (config topic) and, registered with them, for the
zombie, clear and mark facts of the run log (issue 4; :mod:`.projection_interventions`).

A pool row is the latest ``PoolSet`` (by event time, so a rebuild in another
interleaving yields the same row); ``PoolDeleted`` removes it (``default_pool`` goes
back to its 128 slots, as it cannot be deleted in Airflow either).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from ledgerflow.api.projection_interventions import INTERVENTION_HANDLERS
from ledgerflow.common import events as ev

DEFAULT_POOL = "default_pool"
DEFAULT_POOL_SLOTS = 128

_UPSERT_POOL = """
INSERT INTO pools AS p (name, slots, description, include_deferred, updated_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (name) DO UPDATE SET
    slots = EXCLUDED.slots, description = EXCLUDED.description,
    include_deferred = EXCLUDED.include_deferred, updated_at = EXCLUDED.updated_at
WHERE p.updated_at IS NULL OR p.updated_at <= EXCLUDED.updated_at
"""


async def _pool_set(conn: asyncpg.Connection, env: ev.Envelope) -> None:
    p: ev.PoolSet = env.data
    await conn.execute(_UPSERT_POOL, p.name, p.slots, p.description, p.include_deferred, env.time)


async def _pool_deleted(conn: asyncpg.Connection, env: ev.Envelope) -> None:
    p: ev.PoolDeleted = env.data
    if p.name == DEFAULT_POOL:
        await conn.execute(
            "UPDATE pools SET slots = $2, description = 'Default pool', include_deferred = false,"
            " updated_at = $3 WHERE name = $1",
            p.name,
            DEFAULT_POOL_SLOTS,
            env.time,
        )
        return
    await conn.execute(
        "DELETE FROM pools WHERE name = $1 AND (updated_at IS NULL OR updated_at <= $2)",
        p.name,
        env.time,
    )


POOL_HANDLERS: dict[type[Any], Callable[[asyncpg.Connection, Any], Awaitable[None]]] = {
    ev.PoolSet: _pool_set,
    ev.PoolDeleted: _pool_deleted,
    **INTERVENTION_HANDLERS,
}
"""Registered in :data:`ledgerflow.api.projection._HANDLERS` (one line there)."""
