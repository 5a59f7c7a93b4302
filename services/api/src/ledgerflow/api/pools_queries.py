"""Pools as the API shows them (Airflow's ``PoolResponse``), read from the projection.

Occupancy is counted from the task instances in the pool: ``running_slots``,
``queued_slots``, ``scheduled_slots`` and ``deferred_slots`` sum their ``pool_slots``;
``occupied_slots`` is running + queued (+ deferred with ``include_deferred``), and
``open_slots`` what is left (-1 slots: unlimited, as in Airflow).
"""

from __future__ import annotations

from typing import Any

import asyncpg
from pydantic import BaseModel

_SELECT = """
SELECT p.name, p.slots, p.description, p.include_deferred,
       COALESCE(sum(ti.pool_slots) FILTER (WHERE ti.state = 'running'), 0)::int AS running,
       COALESCE(sum(ti.pool_slots) FILTER (WHERE ti.state = 'queued'), 0)::int AS queued,
       COALESCE(sum(ti.pool_slots) FILTER (WHERE ti.state = 'scheduled'), 0)::int AS scheduled,
       COALESCE(sum(ti.pool_slots) FILTER (WHERE ti.state = 'deferred'), 0)::int AS deferred
FROM pools p
LEFT JOIN task_instances ti ON ti.pool = p.name
     AND ti.state IN ('running', 'queued', 'scheduled', 'deferred')
{where}
GROUP BY p.name
ORDER BY p.name
"""


class PoolResponse(BaseModel):
    name: str
    slots: int
    description: str | None
    include_deferred: bool
    occupied_slots: int
    running_slots: int
    queued_slots: int
    scheduled_slots: int
    open_slots: int
    deferred_slots: int


class PoolCollectionResponse(BaseModel):
    pools: list[PoolResponse]
    total_entries: int


def pool_response(row: Any) -> PoolResponse:
    occupied = row["running"] + row["queued"] + (row["deferred"] if row["include_deferred"] else 0)
    slots = row["slots"]
    return PoolResponse(
        name=row["name"],
        slots=slots,
        description=row["description"],
        include_deferred=row["include_deferred"],
        occupied_slots=occupied,
        running_slots=row["running"],
        queued_slots=row["queued"],
        scheduled_slots=row["scheduled"],
        open_slots=-1 if slots < 0 else slots - occupied,
        deferred_slots=row["deferred"],
    )


async def list_pools(
    conn: asyncpg.Connection, *, limit: int, offset: int, pattern: str | None
) -> PoolCollectionResponse:
    where, args = ("", []) if not pattern else ("WHERE p.name ILIKE $1", [f"%{pattern}%"])
    rows = await conn.fetch(_SELECT.format(where=where), *args)
    pools = [pool_response(r) for r in rows]
    return PoolCollectionResponse(pools=pools[offset : offset + limit], total_entries=len(pools))


async def get_pool(conn: asyncpg.Connection, name: str) -> PoolResponse | None:
    rows = await conn.fetch(_SELECT.format(where="WHERE p.name = $1"), name)
    return pool_response(rows[0]) if rows else None
