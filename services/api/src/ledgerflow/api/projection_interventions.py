"""Projector handlers for zombies, clears, marks and scheduled instances (issue 4).

Like every handler, each is guarded so that a repeat, or a fact about an older try,
changes nothing: task instance rows change only when their ``try_number`` is the fact's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from ledgerflow.common import events as ev

_KEY = "dag_id, run_id, task_id, map_index"
_ATTEMPT = f"({_KEY}, try_number) = ($1, $2, $3, $4, $5)"

# An attempt's first verdict is final (rank < 3: not yet finished).
_CLOSE_ATTEMPT = f"""
UPDATE task_attempts SET state = $6, end_date = COALESCE(end_date, $7), error = $8,
                         error_type = $9, reason = $10
WHERE {_ATTEMPT} AND ti_state_rank(state) < 3
"""


async def _zombie(conn: asyncpg.Connection, env: ev.Envelope) -> None:
    """The attempt is over (failed); the scheduler's retry/fail verdict follows."""
    p: ev.TaskAttemptZombie = env.data
    key = (p.dag_id, p.run_id, p.task_id, p.map_index, p.try_number)
    await conn.execute(_CLOSE_ATTEMPT, *key, "failed", p.at, p.reason, "ZombieTask", p.reason)


_TI_CLEARED = f"""
UPDATE task_instances SET state = NULL, next_retry_at = NULL
WHERE ({_KEY}) = ($1, $2, $3, $4) AND try_number = $5
"""


async def _cleared(conn: asyncpg.Connection, env: ev.Envelope) -> None:
    p: ev.TaskInstanceCleared = env.data
    key = (p.dag_id, p.run_id, p.task_id, p.map_index, p.try_number)
    await conn.execute(_TI_CLEARED, *key)
    reason = f"cleared by {p.cleared_by}" if p.cleared_by else "cleared"
    await conn.execute(_CLOSE_ATTEMPT, *key, "failed", p.at, reason, "TaskCleared", reason)


_TI_STATE_SET = f"""
UPDATE task_instances SET state = $6, next_retry_at = NULL,
    end_date = COALESCE(end_date, $7),
    duration = CASE WHEN start_date IS NULL THEN duration
                    ELSE extract(epoch FROM COALESCE(end_date, $7) - start_date)::float8 END
WHERE ({_KEY}) = ($1, $2, $3, $4) AND try_number = $5
"""


async def _state_set(conn: asyncpg.Connection, env: ev.Envelope) -> None:
    p: ev.TaskInstanceStateSet = env.data
    key = (p.dag_id, p.run_id, p.task_id, p.map_index, p.try_number)
    await conn.execute(_TI_STATE_SET, *key, p.state, p.at)
    reason = f"marked {p.state}" + (f" by {p.set_by}" if p.set_by else "")
    await conn.execute(_CLOSE_ATTEMPT, *key, p.state, p.at, None, None, reason)


_RUN_STATE_SET = """
UPDATE dag_runs SET state = $3,
    start_date = CASE WHEN $3 = 'queued' THEN NULL ELSE start_date END,
    end_date = CASE WHEN $3 = 'queued' THEN NULL ELSE $4::timestamptz END,
    failure_reason = CASE WHEN $3 = 'queued' THEN NULL ELSE failure_reason END,
    updated_at = $4
WHERE dag_id = $1 AND run_id = $2
"""


async def _run_state_set(conn: asyncpg.Connection, env: ev.Envelope) -> None:
    p: ev.DagRunStateSet = env.data
    await conn.execute(_RUN_STATE_SET, p.dag_id, p.run_id, p.state, p.at)


_TI_SCHEDULED = f"""
UPDATE task_instances SET state = 'scheduled', pool = $6, pool_slots = $7, priority_weight = $8
WHERE ({_KEY}) = ($1, $2, $3, $4) AND try_number = $5 - 1
  AND (state IS NULL OR state IN ('up_for_retry', 'up_for_reschedule'))
"""


async def _scheduled(conn: asyncpg.Connection, env: ev.Envelope) -> None:
    """Waiting for the pool arbiter (Airflow's ``scheduled``)."""
    p: ev.TaskInstanceScheduled = env.data
    key = (p.dag_id, p.run_id, p.task_id, p.map_index, p.try_number)
    await conn.execute(_TI_SCHEDULED, *key, p.pool, p.pool_slots, p.priority_weight)


INTERVENTION_HANDLERS: dict[type[Any], Callable[[asyncpg.Connection, Any], Awaitable[None]]] = {
    ev.TaskInstanceScheduled: _scheduled,
    ev.TaskAttemptZombie: _zombie,
    ev.TaskInstanceCleared: _cleared,
    ev.TaskInstanceStateSet: _state_set,
    ev.DagRunStateSet: _run_state_set,
}
"""Registered in :data:`ledgerflow.api.projection._HANDLERS`."""
