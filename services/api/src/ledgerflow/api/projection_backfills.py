"""Projector handlers for backfills (issue 6): the ``backfills`` and
``backfill_dag_runs`` tables (migration ``0009_backfills.sql``).

Each handler is guarded so that a repeat changes nothing: a backfill row is inserted
once, flags only move forward with event time, and ``completed_at`` is set once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from ledgerflow.common import events as ev

_INSERT_BACKFILL = """
INSERT INTO backfills (id, dag_id, from_date, to_date, dag_run_conf, reprocess_behavior,
                       max_active_runs, run_backwards, triggering_user_name, created_at,
                       updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (id) DO NOTHING
"""
_INSERT_RUNS = """
INSERT INTO backfill_dag_runs (backfill_id, sort_ordinal, dag_id, logical_date, action,
                               run_id, exception_reason)
SELECT $1, o, $2, d, a, r, x
FROM unnest($3::integer[], $4::timestamptz[], $5::text[], $6::text[], $7::text[])
     AS t(o, d, a, r, x)
ON CONFLICT (backfill_id, sort_ordinal) DO NOTHING
"""
# Ids come from this sequence (the API's nextval); keep it past every stored id.
_BUMP_IDS = "SELECT setval('backfill_ids', GREATEST($1::bigint, last_value)) FROM backfill_ids"


async def _created(conn: asyncpg.Connection, env: ev.Envelope) -> None:
    p: ev.BackfillCreated = env.data
    await conn.execute(
        _INSERT_BACKFILL,
        p.backfill_id,
        p.dag_id,
        p.from_date,
        p.to_date,
        p.dag_run_conf,
        p.reprocess_behavior,
        p.max_active_runs,
        p.run_backwards,
        p.created_by,
        p.created_at,
        env.time,
    )
    await conn.execute(
        _INSERT_RUNS,
        p.backfill_id,
        p.dag_id,
        [r.sort_ordinal for r in p.runs],
        [r.logical_date for r in p.runs],
        [r.action for r in p.runs],
        [r.run_id for r in p.runs],
        [r.exception_reason for r in p.runs],
    )
    await conn.execute(_BUMP_IDS, p.backfill_id)


_SET_PAUSED = """
UPDATE backfills SET is_paused = $2, updated_at = $3
WHERE id = $1 AND completed_at IS NULL AND updated_at <= $3
"""


async def _paused(conn: asyncpg.Connection, env: ev.Envelope) -> None:
    p: ev.BackfillPaused = env.data
    await conn.execute(_SET_PAUSED, p.backfill_id, True, env.time)


async def _unpaused(conn: asyncpg.Connection, env: ev.Envelope) -> None:
    p: ev.BackfillUnpaused = env.data
    await conn.execute(_SET_PAUSED, p.backfill_id, False, env.time)


async def _cancelled(conn: asyncpg.Connection, env: ev.Envelope) -> None:
    p: ev.BackfillCancelled = env.data
    await conn.execute(
        "UPDATE backfills SET is_paused = true, cancelled = true,"
        " updated_at = GREATEST(updated_at, $2) WHERE id = $1",
        p.backfill_id,
        env.time,
    )


async def _completed(conn: asyncpg.Connection, env: ev.Envelope) -> None:
    p: ev.BackfillCompleted = env.data
    await conn.execute(
        "UPDATE backfills SET completed_at = $2, updated_at = GREATEST(updated_at, $2)"
        " WHERE id = $1 AND completed_at IS NULL",
        p.backfill_id,
        p.at,
    )


async def _reprocessed(conn: asyncpg.Connection, env: ev.Envelope) -> None:
    """The existing run is now a backfill run (Airflow updates its ``run_type``)."""
    p: ev.BackfillRunReprocessed = env.data
    await conn.execute(
        "UPDATE dag_runs SET run_type = 'backfill', updated_at = GREATEST(updated_at, $3)"
        " WHERE dag_id = $1 AND run_id = $2",
        p.dag_id,
        p.run_id,
        env.time,
    )


BACKFILL_HANDLERS: dict[type[Any], Callable[[asyncpg.Connection, Any], Awaitable[None]]] = {
    ev.BackfillCreated: _created,
    ev.BackfillPaused: _paused,
    ev.BackfillUnpaused: _unpaused,
    ev.BackfillCancelled: _cancelled,
    ev.BackfillCompleted: _completed,
    ev.BackfillRunReprocessed: _reprocessed,
}
"""Registered in :data:`ledgerflow.api.projection._HANDLERS` (one line there)."""
