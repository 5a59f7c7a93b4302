"""Projection rows of the ADR 0006 task model: XComs, rendered fields, reschedules and
mapped-task expansions (tables of migration ``0003_task_model``).

These are plan steps the handlers in :mod:`ledgerflow.api.projection` append after
the statements that move the task instance's state, so the same rules hold: values
come from the events, and a report of an older try than the task instance's changes
nothing. Each returns ``(sql, args)`` statements (registered with ``planned_sql``)
touching only the event's task instance (its row, attempts, XComs, reschedules); the map
expansion is a plain coroutine.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from ledgerflow.api.projection_base import planned_sql
from ledgerflow.common import events as ev

_TI_WHERE = "dag_id = $1 AND run_id = $2 AND task_id = $3 AND map_index = $4"

Statement = tuple[str, tuple[Any, ...]]


def _ti_key(p: Any) -> tuple[str, str, str, int]:
    return (p.dag_id, p.run_id, p.task_id, p.map_index)


# ``p`` (an attempt report, try $5) is about the task instance's latest try, or there is
# no task instance row yet. Checked in SQL by each statement, so a plan needs no reads.
_IS_CURRENT_TRY = (
    "NOT EXISTS (SELECT 1 FROM task_instances ti WHERE ti.dag_id = $1 AND ti.run_id = $2"
    " AND ti.task_id = $3 AND ti.map_index = $4 AND ti.try_number <> $5)"
)

# --------------------------------------------------------------------------- XComs

# A success's old XComs go in the statement that finishes the attempt
# (``projection_tasks._SUCCEEDED``), which sees the task instance as it was before:
# there, "no task instance row of a newer try than $5" is what "of another try than $5"
# is afterwards (the finishing upsert moves a row of an older try, or none, to $5).
DELETE_XCOMS_BEFORE_FINISH = (
    f"DELETE FROM xcom WHERE {_TI_WHERE} AND NOT EXISTS (SELECT 1 FROM task_instances ti"
    " WHERE ti.dag_id = $1 AND ti.run_id = $2 AND ti.task_id = $3 AND ti.map_index = $4"
    " AND ti.try_number > $5)"
)
_INSERT_XCOM = planned_sql(f"""
INSERT INTO xcom (dag_id, run_id, task_id, map_index, key, value, timestamp)
SELECT $1::text, $2::text, $3::text, $4::integer, $6::text, $7::jsonb, $8::timestamptz
WHERE {_IS_CURRENT_TRY}
ON CONFLICT (dag_id, run_id, task_id, map_index, key) DO UPDATE
SET value = EXCLUDED.value, timestamp = EXCLUDED.timestamp
""")


def plan_xcom_inserts(p: ev.TaskAttemptSucceeded) -> list[Statement]:
    """The XComs of a successful try replace the task instance's XComs (Airflow clears
    a task instance's XComs when a new try starts; only the latest try's remain): these
    statements follow the one that deletes the old ones (DELETE_XCOMS_BEFORE_FINISH). A
    report of an older try changes nothing (every statement checks the try)."""
    key = (*_ti_key(p), p.try_number)
    out: list[Statement] = []
    if p.return_value is not None:  # returning None pushes nothing, as in Airflow
        out.append((_INSERT_XCOM, (*key, "return_value", p.return_value, p.end_date)))
    out += [
        (_INSERT_XCOM, (*key, k, v, p.end_date)) for k, v in p.xcoms.items() if k != "return_value"
    ]
    return out


# Rendered template fields are set by the finishing upsert itself (``_TI_FINISHED``).

_SET_REASON = planned_sql(
    f"UPDATE task_attempts SET reason = $6 WHERE {_TI_WHERE} AND try_number = $5"
)


def plan_skip_reason(p: ev.TaskAttemptSkipped) -> list[Statement]:
    if p.reason is None:
        return []
    return [(_SET_REASON, (*_ti_key(p), p.try_number, p.reason))]


# --------------------------------------------------------------------------- reschedules

_INSERT_RESCHEDULE = planned_sql("""
INSERT INTO task_reschedule (dag_id, run_id, task_id, map_index, try_number, start_date,
                             end_date, duration, reschedule_date)
SELECT k.dag_id, k.run_id, k.task_id, k.map_index, k.try_number, a.start_date, k.end_date,
       extract(epoch FROM k.end_date - a.start_date)::float8, k.reschedule_date
FROM (SELECT $1::text AS dag_id, $2::text AS run_id, $3::text AS task_id,
             $4::integer AS map_index, $5::integer AS try_number,
             $6::timestamptz AS end_date, $7::timestamptz AS reschedule_date) AS k
LEFT JOIN task_attempts a USING (dag_id, run_id, task_id, map_index, try_number)
ON CONFLICT (dag_id, run_id, task_id, map_index, try_number) DO NOTHING
""")


def plan_reschedule(p: ev.TaskAttemptRescheduled) -> list[Statement]:
    """One ``task_reschedule`` row per poke that asked to be rescheduled. The start date
    is the attempt's (its TaskAttemptStarted precedes it on the same partition)."""
    return [(_INSERT_RESCHEDULE, (*_ti_key(p), p.try_number, p.end_date, p.reschedule_date))]


# --------------------------------------------------------------------------- mapped tasks

_UPSERT_TASK_MAP = """
INSERT INTO task_map (dag_id, run_id, task_id, length, expanded_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (dag_id, run_id, task_id) DO UPDATE
SET length = EXCLUDED.length, expanded_at = EXCLUDED.expanded_at
"""

_DROP_PLACEHOLDER = """
DELETE FROM task_instances WHERE dag_id = $1 AND run_id = $2 AND task_id = $3
                             AND map_index = -1
"""

_DROP_INDEXES_BEYOND = """
DELETE FROM task_instances WHERE dag_id = $1 AND run_id = $2 AND task_id = $3
                             AND map_index >= $4
"""


async def record_map_expansion(conn: asyncpg.Connection, p: ev.TaskInstanceMapExpanded) -> None:
    """Remember the mapped length; with indexes to run, the -1 placeholder goes (as in
    Airflow, where expansion turns it into index 0). Rows for indexes 0 .. length-1
    are created by the caller from the run's DAG version (``task_map`` drives that)."""
    await conn.execute(_UPSERT_TASK_MAP, p.dag_id, p.run_id, p.task_id, p.length, p.at)
    await conn.execute(_DROP_INDEXES_BEYOND, p.dag_id, p.run_id, p.task_id, max(p.length, 0))
    if p.length > 0:
        await conn.execute(_DROP_PLACEHOLDER, p.dag_id, p.run_id, p.task_id)
