"""Task instance, attempt, log and heartbeat handlers of the projection (the hot ones:
most are :class:`~ledgerflow.api.projection_base.PlannedHandler` plans that the batch
path runs together). Registered in :data:`ledgerflow.api.projection._HANDLERS`."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import asyncpg
from ledgerflow.api import projection_task_model as task_model
from ledgerflow.api.projection_base import PlannedHandler, Statement, planned_sql
from ledgerflow.common import events as ev
from pydantic import TypeAdapter
from pydantic_core import PydanticSerializationError

# --------------------------------------------------------------------------- task instances
# In the upserts below, ``ti`` is the stored row and EXCLUDED the incoming values. Rows
# for an older try are left alone (WHERE clause); within the same try a state only
# moves forward (ti_state_rank).

_SAME_TRY_FORWARD = (
    "(EXCLUDED.try_number > ti.try_number OR "
    "ti_state_rank(EXCLUDED.state) >= ti_state_rank(ti.state))"
)
_NEW_TRY = "EXCLUDED.try_number > ti.try_number"
_TI_KEY = "dag_id, run_id, task_id, map_index"
_ATTEMPT_KEY = "dag_id, run_id, task_id, map_index, try_number"


def _keep_unless_new_try(col: str) -> str:
    return f"{col} = CASE WHEN {_NEW_TRY} THEN NULL ELSE ti.{col} END"


_RESET_FOR_NEW_TRY = ", ".join(
    _keep_unless_new_try(c)
    for c in (
        "start_date",
        "end_date",
        "duration",
        "hostname",
        "executor_id",
        "pid",
        "return_value",
        "next_retry_at",
    )
)

_PARAM = re.compile(r"\$(\d+)(?!\d)")


def _together(*statements: str) -> str:
    """One statement that runs ``statements`` in order: all but the last in a
    data-modifying WITH. All of them see the rows as they were before the statement, so
    this is the statements one after the other only when none reads what an earlier one
    writes (here: a task instance and its attempt, different tables; see
    :data:`~ledgerflow.api.projection_task_model.DELETE_XCOMS_BEFORE_FINISH` for the one
    that reads). Fewer statements per event: each costs Postgres its executor set-up and
    tear-down, about as much as a small upsert's own work (docs/performance.md)."""
    *first, last = (sql.strip() for sql in statements)
    steps = ",\n".join(f"step_{n} AS (\n{sql}\n)" for n, sql in enumerate(first))
    return f"WITH {steps}\n{last}\n"


def _renumbered(sql: str, numbers: Mapping[int, int]) -> str:
    """``sql`` with parameter ``$n`` renamed ``$numbers[n]`` (the others unchanged)."""
    return _PARAM.sub(lambda m: f"${numbers.get(int(m.group(1)), int(m.group(1)))}", sql)


_TI_QUEUED = f"""
INSERT INTO task_instances AS ti ({_TI_KEY}, state, try_number, queued_when, queue, pool,
                                  priority_weight)
VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7, $8, $9)
ON CONFLICT ({_TI_KEY}) DO UPDATE SET
    state = CASE WHEN {_SAME_TRY_FORWARD} THEN EXCLUDED.state ELSE ti.state END,
    try_number = EXCLUDED.try_number,
    queued_when = EXCLUDED.queued_when, queue = EXCLUDED.queue, pool = EXCLUDED.pool,
    priority_weight = EXCLUDED.priority_weight,
    {_RESET_FOR_NEW_TRY}
WHERE EXCLUDED.try_number >= ti.try_number
"""

_ATTEMPT_QUEUED = f"""
INSERT INTO task_attempts AS a ({_ATTEMPT_KEY}, state, queued_when)
VALUES ($1, $2, $3, $4, $5, 'queued', $6)
ON CONFLICT ({_ATTEMPT_KEY}) DO UPDATE SET
    state = CASE WHEN ti_state_rank(a.state) <= 1 THEN 'queued' ELSE a.state END,
    queued_when = EXCLUDED.queued_when
"""


# The attempt's parameters are the first six of the task instance's.
_QUEUED = planned_sql(_together(_TI_QUEUED, _ATTEMPT_QUEUED))


def _plan_ti_queued(env: ev.Envelope) -> list[Statement]:
    p: ev.TaskInstanceQueued = env.data
    key = (p.dag_id, p.run_id, p.task_id, p.map_index)
    return [
        (_QUEUED, (*key, p.try_number, p.queued_when, p.queue, p.pool, p.priority_weight)),
    ]


_ti_queued = PlannedHandler(_plan_ti_queued)


_TI_STARTED = f"""
INSERT INTO task_instances AS ti ({_TI_KEY}, state, try_number, start_date, hostname,
                                  executor_id, pid)
VALUES ($1, $2, $3, $4, 'running', $5, $6, $7, $8, $9)
ON CONFLICT ({_TI_KEY}) DO UPDATE SET
    state = CASE WHEN {_SAME_TRY_FORWARD} THEN EXCLUDED.state ELSE ti.state END,
    try_number = EXCLUDED.try_number,
    start_date = EXCLUDED.start_date, hostname = EXCLUDED.hostname,
    executor_id = EXCLUDED.executor_id, pid = EXCLUDED.pid,
    end_date = CASE WHEN {_NEW_TRY} THEN NULL ELSE ti.end_date END,
    duration = CASE WHEN {_NEW_TRY} OR ti.end_date IS NULL THEN NULL
                    ELSE extract(epoch FROM ti.end_date - EXCLUDED.start_date)::float8 END,
    return_value = CASE WHEN {_NEW_TRY} THEN NULL ELSE ti.return_value END,
    next_retry_at = CASE WHEN {_NEW_TRY} THEN NULL ELSE ti.next_retry_at END
WHERE EXCLUDED.try_number >= ti.try_number
"""

_ATTEMPT_STARTED = f"""
INSERT INTO task_attempts AS a ({_ATTEMPT_KEY}, state, start_date, hostname, executor_id, pid)
VALUES ($1, $2, $3, $4, $5, 'running', $6, $7, $8, $9)
ON CONFLICT ({_ATTEMPT_KEY}) DO UPDATE SET
    state = CASE WHEN ti_state_rank(a.state) <= 2 THEN 'running' ELSE a.state END,
    start_date = EXCLUDED.start_date, hostname = EXCLUDED.hostname,
    executor_id = EXCLUDED.executor_id, pid = EXCLUDED.pid,
    duration = CASE WHEN a.end_date IS NULL THEN NULL
                    ELSE extract(epoch FROM a.end_date - EXCLUDED.start_date)::float8 END
"""


_STARTED = planned_sql(_together(_TI_STARTED, _ATTEMPT_STARTED))  # the same parameters


def _plan_attempt_started(env: ev.Envelope) -> list[Statement]:
    p: ev.TaskAttemptStarted = env.data
    args = (
        p.dag_id,
        p.run_id,
        p.task_id,
        p.map_index,
        p.try_number,
        p.start_date,
        p.hostname,
        p.executor_id,
        p.pid,
    )
    return [(_STARTED, args)]


_attempt_started = PlannedHandler(_plan_attempt_started)


# A finished attempt: $5 try, $6 state ('success' or NULL for a failure, whose task
# instance state the scheduler decides), $7 end_date, $8 executor_id, $9 return_value.
# $10: the try's rendered template fields, NULL to keep the stored ones. Setting them
# here is the same as an UPDATE ... WHERE try_number = $5 afterwards: the row ends up
# at try $5 exactly when this statement inserts or updates it.
_TI_FINISHED = f"""
INSERT INTO task_instances AS ti ({_TI_KEY}, try_number, state, end_date, executor_id,
                                  return_value, rendered_fields)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, COALESCE($10::jsonb, '{{}}'::jsonb))
ON CONFLICT ({_TI_KEY}) DO UPDATE SET
    rendered_fields = COALESCE($10::jsonb, ti.rendered_fields),
    state = CASE WHEN EXCLUDED.state IS NOT NULL AND {_SAME_TRY_FORWARD}
                 THEN EXCLUDED.state ELSE ti.state END,
    try_number = EXCLUDED.try_number,
    end_date = EXCLUDED.end_date, executor_id = EXCLUDED.executor_id,
    return_value = EXCLUDED.return_value,
    start_date = CASE WHEN {_NEW_TRY} THEN NULL ELSE ti.start_date END,
    duration = CASE WHEN {_NEW_TRY} OR ti.start_date IS NULL THEN NULL
                    ELSE extract(epoch FROM EXCLUDED.end_date - ti.start_date)::float8 END
WHERE EXCLUDED.try_number >= ti.try_number
"""

_ATTEMPT_FINISHED = f"""
INSERT INTO task_attempts AS a ({_ATTEMPT_KEY}, state, end_date, executor_id, return_value,
                                error, error_type, retryable)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
ON CONFLICT ({_ATTEMPT_KEY}) DO UPDATE SET
    state = EXCLUDED.state, end_date = EXCLUDED.end_date, executor_id = EXCLUDED.executor_id,
    return_value = EXCLUDED.return_value, error = EXCLUDED.error,
    error_type = EXCLUDED.error_type, retryable = EXCLUDED.retryable,
    duration = CASE WHEN a.start_date IS NULL THEN NULL
                    ELSE extract(epoch FROM EXCLUDED.end_date - a.start_date)::float8 END
WHERE ti_state_rank(a.state) < 3  -- an attempt's first verdict is final
"""


# A finished attempt and its task instance in one statement. The attempt's end date,
# executor and return value are the task instance's ($7-$9); its own parameters follow
# the task instance's: $11 state, $12 error, $13 error_type, $14 retryable.
_ATTEMPT_FINISHED_AFTER_TI = _renumbered(_ATTEMPT_FINISHED, {6: 11, 10: 12, 11: 13, 12: 14})
_FINISHED = planned_sql(_together(_TI_FINISHED, _ATTEMPT_FINISHED_AFTER_TI))
# A success also replaces the task instance's XComs: the old ones go in the same
# statement, the new ones (plan_xcom_inserts) after it.
_SUCCEEDED = planned_sql(
    _together(_TI_FINISHED, _ATTEMPT_FINISHED_AFTER_TI, task_model.DELETE_XCOMS_BEFORE_FINISH)
)


def _finished(
    sql: str,
    p: Any,
    ti_state: str | None,
    attempt_state: str,
    *,
    return_value: Any = None,
    rendered_fields: Any = None,
    error: tuple[str | None, str | None, bool | None] = (None, None, None),
) -> Statement:
    key = (p.dag_id, p.run_id, p.task_id, p.map_index, p.try_number)
    return sql, (
        *key,
        ti_state,
        p.end_date,
        p.executor_id,
        return_value,
        rendered_fields,
        attempt_state,
        *error,
    )


def _plan_attempt_succeeded(env: ev.Envelope) -> list[Statement]:
    p: ev.TaskAttemptSucceeded = env.data
    return [
        _finished(
            _SUCCEEDED,
            p,
            "success",
            "success",
            return_value=p.return_value,
            rendered_fields=p.rendered_fields or None,
        ),
        *task_model.plan_xcom_inserts(p),
    ]


def _plan_attempt_failed(env: ev.Envelope) -> list[Statement]:
    p: ev.TaskAttemptFailed = env.data
    error = (p.error, p.error_type, p.retryable)
    return [
        _finished(
            _FINISHED, p, None, "failed", rendered_fields=p.rendered_fields or None, error=error
        )
    ]


def _plan_attempt_skipped(env: ev.Envelope) -> list[Statement]:
    """The task skipped itself: the task instance is skipped (final, like a success)."""
    p: ev.TaskAttemptSkipped = env.data
    return [
        _finished(_FINISHED, p, "skipped", "skipped", rendered_fields=p.rendered_fields or None),
        *task_model.plan_skip_reason(p),
    ]


def _plan_attempt_rescheduled(env: ev.Envelope) -> list[Statement]:
    """A reschedule-mode sensor will poke again: ``up_for_reschedule`` until the
    scheduler queues the next try at the reschedule date."""
    p: ev.TaskAttemptRescheduled = env.data
    return [
        _finished(_FINISHED, p, "up_for_reschedule", "up_for_reschedule"),
        *task_model.plan_reschedule(p),
    ]


_attempt_succeeded = PlannedHandler(_plan_attempt_succeeded)
_attempt_failed = PlannedHandler(_plan_attempt_failed)
_attempt_skipped = PlannedHandler(_plan_attempt_skipped)
_attempt_rescheduled = PlannedHandler(_plan_attempt_rescheduled)


# The scheduler's verdict on an attempt: $5 try, $6 state, $7 end_date (may be NULL),
# $8 next_retry_at.
_TI_VERDICT = f"""
INSERT INTO task_instances AS ti ({_TI_KEY}, try_number, state, end_date, next_retry_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT ({_TI_KEY}) DO UPDATE SET
    state = CASE WHEN {_SAME_TRY_FORWARD} THEN EXCLUDED.state ELSE ti.state END,
    try_number = EXCLUDED.try_number,
    end_date = CASE WHEN {_NEW_TRY} THEN EXCLUDED.end_date
                    ELSE COALESCE(ti.end_date, EXCLUDED.end_date) END,
    next_retry_at = EXCLUDED.next_retry_at,
    duration = CASE WHEN {_NEW_TRY} OR ti.start_date IS NULL THEN NULL
                    ELSE extract(epoch FROM COALESCE(ti.end_date, EXCLUDED.end_date)
                                            - ti.start_date)::float8 END
WHERE EXCLUDED.try_number >= ti.try_number
"""

# An attempt the scheduler gave up on is over even if its executor never reported.
_ATTEMPT_CLOSE = f"""
UPDATE task_attempts SET state = 'failed', end_date = COALESCE(end_date, $6)
WHERE ({_ATTEMPT_KEY}) = ($1, $2, $3, $4, $5) AND ti_state_rank(state) < 3
"""


# Both in one statement: the attempt's end date is $9.
_VERDICT = planned_sql(_together(_TI_VERDICT, _renumbered(_ATTEMPT_CLOSE, {6: 9})))


def _plan_ti_up_for_retry(env: ev.Envelope) -> list[Statement]:
    p: ev.TaskInstanceUpForRetry = env.data
    key = (p.dag_id, p.run_id, p.task_id, p.map_index, p.try_number)
    return [(_VERDICT, (*key, "up_for_retry", None, p.retry_at, env.time))]


def _plan_ti_failed(env: ev.Envelope) -> list[Statement]:
    p: ev.TaskInstanceFailed = env.data
    key = (p.dag_id, p.run_id, p.task_id, p.map_index, p.try_number)
    return [(_VERDICT, (*key, "failed", p.end_date, None, p.end_date))]


_ti_up_for_retry = PlannedHandler(_plan_ti_up_for_retry)
_ti_failed = PlannedHandler(_plan_ti_failed)


# Skipped / upstream_failed: decided without running; Airflow sets start = end = then.
_TI_NOT_RUN = planned_sql(f"""
INSERT INTO task_instances AS ti ({_TI_KEY}, state, start_date, end_date, duration)
VALUES ($1, $2, $3, $4, $5, $6, $6, 0)
ON CONFLICT ({_TI_KEY}) DO UPDATE SET
    state = EXCLUDED.state,
    start_date = COALESCE(ti.start_date, EXCLUDED.start_date),
    end_date = EXCLUDED.end_date,
    duration = COALESCE(extract(epoch FROM EXCLUDED.end_date
                                          - COALESCE(ti.start_date, EXCLUDED.start_date))::float8, 0)
""")


def _plan_ti_upstream_failed(env: ev.Envelope) -> list[Statement]:
    p: ev.TaskInstanceUpstreamFailed = env.data
    return [(_TI_NOT_RUN, (p.dag_id, p.run_id, p.task_id, p.map_index, "upstream_failed", p.at))]


_ti_upstream_failed = PlannedHandler(_plan_ti_upstream_failed)


async def _ti_failed_by_scheduler(conn: asyncpg.Connection, env: ev.Envelope) -> None:
    """A sensor ran out of time between pokes, or a mapped task's value cannot be
    mapped: failed without an attempt failing (the reason goes on the last attempt)."""
    p: ev.TaskInstanceFailedByScheduler = env.data
    if p.try_number == 0:
        await conn.execute(_TI_NOT_RUN, p.dag_id, p.run_id, p.task_id, p.map_index, "failed", p.at)
        return
    key = (p.dag_id, p.run_id, p.task_id, p.map_index, p.try_number)
    await conn.execute(_TI_VERDICT, *key, "failed", p.at, None)
    await conn.execute(_ATTEMPT_CLOSE, *key, p.at)
    await conn.execute(
        f"UPDATE task_attempts SET reason = $6 WHERE ({_ATTEMPT_KEY}) = ($1, $2, $3, $4, $5)",
        *key,
        p.reason,
    )
    # The instance ended when the scheduler gave up, not when its last poke ended.
    await conn.execute(
        f"UPDATE task_instances SET end_date = $6 WHERE ({_ATTEMPT_KEY}) = ($1, $2, $3, $4, $5)",
        *key,
        p.at,
    )


def _plan_ti_skipped(env: ev.Envelope) -> list[Statement]:
    p: ev.TaskInstanceSkipped = env.data
    return [(_TI_NOT_RUN, (p.dag_id, p.run_id, p.task_id, p.map_index, "skipped", p.at))]


_ti_skipped = PlannedHandler(_plan_ti_skipped)


# --------------------------------------------------------------------------- logs

# $7: the lines as JSON text (pydantic writes it in one call, a third of the time of
# dumping each line and then the list).
_INSERT_LOG_CHUNK = planned_sql("""
INSERT INTO task_logs (dag_id, run_id, task_id, map_index, try_number, chunk, lines)
VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb)
ON CONFLICT DO NOTHING
""")
_LOG_LINES = TypeAdapter(tuple[ev.LogLine, ...])


def _lines_json(lines: tuple[ev.LogLine, ...]) -> str:
    try:
        return _LOG_LINES.dump_json(lines).decode()
    except PydanticSerializationError:  # e.g. a lone surrogate: Postgres refuses it
        return json.dumps([line.model_dump(mode="json") for line in lines])


def _plan_log_chunk(env: ev.Envelope) -> list[Statement]:
    p: ev.TaskLogChunk = env.data
    lines = _lines_json(p.lines)
    return [
        (
            _INSERT_LOG_CHUNK,
            (p.dag_id, p.run_id, p.task_id, p.map_index, p.try_number, p.chunk, lines),
        )
    ]


_log_chunk = PlannedHandler(_plan_log_chunk)


# Heartbeats (ADR 0010) move the attempt's last heartbeat forward (only those of the
# executor that started it count, up to the attempt's end) and are not stored in
# ``events`` (:data:`UNSTORED`): the update is idempotent, so a repeated heartbeat
# needs no event id to be dropped.
_ATTEMPT_HEARTBEAT = planned_sql("""
UPDATE task_attempts SET last_heartbeat_at = GREATEST(last_heartbeat_at, $7)
WHERE dag_id = $1 AND run_id = $2 AND task_id = $3 AND map_index = $4 AND try_number = $5
  AND executor_id = $6 AND (end_date IS NULL OR end_date >= $7)
""")


def _plan_attempt_heartbeat(env: ev.Envelope) -> list[Statement]:
    p: ev.TaskAttemptHeartbeat = env.data
    args = (p.dag_id, p.run_id, p.task_id, p.map_index, p.try_number, p.executor_id, p.at)
    return [(_ATTEMPT_HEARTBEAT, args)]


_attempt_heartbeat = PlannedHandler(_plan_attempt_heartbeat)
UNSTORED: tuple[type[Any], ...] = (ev.TaskAttemptHeartbeat,)


TASK_HANDLERS: dict[type[Any], Any] = {
    ev.TaskInstanceQueued: _ti_queued,
    ev.TaskAttemptStarted: _attempt_started,
    ev.TaskAttemptSucceeded: _attempt_succeeded,
    ev.TaskAttemptFailed: _attempt_failed,
    ev.TaskInstanceUpForRetry: _ti_up_for_retry,
    ev.TaskInstanceFailed: _ti_failed,
    ev.TaskInstanceUpstreamFailed: _ti_upstream_failed,
    ev.TaskInstanceSkipped: _ti_skipped,
    ev.TaskInstanceFailedByScheduler: _ti_failed_by_scheduler,
    ev.TaskAttemptSkipped: _attempt_skipped,
    ev.TaskAttemptRescheduled: _attempt_rescheduled,
    ev.TaskLogChunk: _log_chunk,
    ev.TaskAttemptHeartbeat: _attempt_heartbeat,
}
