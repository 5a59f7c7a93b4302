"""How each event changes the projection's rows (the write side of the projection).

:func:`apply_event` stores the raw envelope in ``events`` and, if the event id is new,
updates the read tables. Three rules keep the projection a pure function of the log,
whatever the interleaving of topics and however often a message is delivered:

- the event id is the primary key of ``events``: a repeat changes nothing;
- row values come from the events (their times, never ``now()``);
- handlers that meet across topics commute: task instances are created by whichever
  of a run (runs topic) and its DAG version (dags topic) is projected second, and the
  ``dags`` row takes ``LEAST``/``GREATEST`` of times, so a rebuild yields the same rows;
- task instance updates are guarded by ``try_number`` and by state rank within a try,
  so a report of an older attempt never overwrites a newer one (Airflow's check).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from ledgerflow.common import events as ev

Handler = Callable[[asyncpg.Connection, Any], Awaitable[None]]

_INSERT_EVENT = """
INSERT INTO events (event_id, topic, kafka_partition, kafka_offset, aggregate_key, event_type,
                    event_time, sequence, source, schema_version, correlation_id, causation_id,
                    traceparent, data)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
ON CONFLICT (event_id) DO NOTHING
RETURNING 1
"""


async def apply_event(
    conn: asyncpg.Connection,
    envelope: ev.Envelope,
    *,
    topic: str,
    partition: int,
    offset: int,
    traceparent: str | None,
) -> bool:
    """Project one envelope. Returns False when the event id was already projected."""
    data = envelope.model_dump(mode="json", by_alias=True)["data"]
    inserted = await conn.fetchval(
        _INSERT_EVENT,
        envelope.id,
        topic,
        partition,
        offset,
        envelope.aggregate_key,
        envelope.data.type,
        envelope.time,
        envelope.sequence,
        envelope.source,
        envelope.schema_version,
        envelope.correlation_id,
        envelope.causation_id,
        traceparent,
        data,
    )
    if inserted is None:
        return False
    handler = _HANDLERS.get(type(envelope.data))
    if handler is not None:
        await handler(conn, envelope)
    return True


# --------------------------------------------------------------------------- DAGs

_INSERT_VERSION = """
INSERT INTO dag_versions (version_id, dag_id, version_number, serialized_dag, source_code,
                          filename, submitted_by, created_at)
SELECT $1, $2, COALESCE((SELECT max(version_number) FROM dag_versions WHERE dag_id = $2), 0) + 1,
       $3, $4, $5, $6, $7
ON CONFLICT (version_id) DO NOTHING
RETURNING version_number
"""

# is_paused is taken from the DAG only when the row is created; afterwards only
# DagPauseChanged facts change it (so the result does not depend on topic interleaving).
_UPSERT_DAG_FROM_VERSION = """
INSERT INTO dags AS d (dag_id, is_paused, latest_version_id, description, fileloc, filename,
                       schedule, tags, owners, max_active_runs, max_active_tasks, created_at,
                       last_parsed_time, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $12)
ON CONFLICT (dag_id) DO UPDATE SET
    latest_version_id = EXCLUDED.latest_version_id,
    description = EXCLUDED.description,
    fileloc = EXCLUDED.fileloc,
    filename = EXCLUDED.filename,
    schedule = EXCLUDED.schedule,
    tags = EXCLUDED.tags,
    owners = EXCLUDED.owners,
    max_active_runs = EXCLUDED.max_active_runs,
    max_active_tasks = EXCLUDED.max_active_tasks,
    created_at = LEAST(d.created_at, EXCLUDED.created_at),
    last_parsed_time = EXCLUDED.last_parsed_time,
    updated_at = GREATEST(d.updated_at, EXCLUDED.updated_at)
"""

_ENSURE_TASK_INSTANCES = """
INSERT INTO task_instances AS ti (dag_id, run_id, task_id, map_index, operator, queue, pool,
                                  priority_weight, max_tries)
SELECT r.dag_id, r.run_id, t->>'task_id', -1, t->>'operator', t->>'queue', t->>'pool',
       (t->>'priority_weight')::integer, (t->>'retries')::integer
FROM dag_runs r
JOIN dag_versions v ON v.version_id = r.version_id
CROSS JOIN LATERAL jsonb_array_elements(v.serialized_dag->'tasks') AS t
WHERE {where}
ON CONFLICT (dag_id, run_id, task_id, map_index) DO UPDATE SET
    operator = COALESCE(ti.operator, EXCLUDED.operator),
    queue = COALESCE(ti.queue, EXCLUDED.queue),
    pool = COALESCE(ti.pool, EXCLUDED.pool),
    priority_weight = COALESCE(ti.priority_weight, EXCLUDED.priority_weight),
    max_tries = COALESCE(ti.max_tries, EXCLUDED.max_tries)
"""
_ENSURE_TIS_FOR_VERSION = _ENSURE_TASK_INSTANCES.format(where="r.version_id = $1")
_ENSURE_TIS_FOR_RUN = _ENSURE_TASK_INSTANCES.format(where="r.dag_id = $1 AND r.run_id = $2")


async def _dag_version_published(conn: asyncpg.Connection, env: ev.Envelope) -> None:
    p: ev.DagVersionPublished = env.data
    dag = p.dag
    number = await conn.fetchval(
        _INSERT_VERSION,
        p.version_id,
        p.dag_id,
        dag.model_dump(mode="json"),
        p.source_code,
        p.filename,
        p.submitted_by,
        env.time,
    )
    if number is None:  # the same version again (same content): nothing changes
        return
    owners = sorted({dag.owner, *(t.owner for t in dag.tasks)})
    await conn.execute(
        _UPSERT_DAG_FROM_VERSION,
        p.dag_id,
        dag.is_paused_upon_creation,
        p.version_id,
        dag.description,
        dag.fileloc,
        p.filename,
        dag.schedule,
        list(dag.tags),
        owners,
        dag.max_active_runs,
        dag.max_active_tasks,
        env.time,
    )
    await conn.execute(_ENSURE_TIS_FOR_VERSION, p.version_id)


_UPSERT_PAUSE = """
INSERT INTO dags AS d (dag_id, is_paused, created_at, updated_at) VALUES ($1, $2, $3, $3)
ON CONFLICT (dag_id) DO UPDATE SET
    is_paused = EXCLUDED.is_paused,
    created_at = LEAST(d.created_at, EXCLUDED.created_at),
    updated_at = GREATEST(d.updated_at, EXCLUDED.updated_at)
"""


async def _dag_pause_changed(conn: asyncpg.Connection, env: ev.Envelope) -> None:
    p: ev.DagPauseChanged = env.data
    await conn.execute(_UPSERT_PAUSE, p.dag_id, p.is_paused, env.time)


# --------------------------------------------------------------------------- DAG runs

_UPSERT_RUN_QUEUED = """
INSERT INTO dag_runs AS r (dag_id, run_id, state, run_type, conf, logical_date, queued_at,
                           version_id, triggered_by, note, updated_at)
VALUES ($1, $2, 'queued', $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (dag_id, run_id) DO UPDATE SET
    state = 'queued', run_type = EXCLUDED.run_type, conf = EXCLUDED.conf,
    logical_date = EXCLUDED.logical_date, queued_at = EXCLUDED.queued_at,
    version_id = EXCLUDED.version_id, triggered_by = EXCLUDED.triggered_by,
    note = EXCLUDED.note, start_date = NULL, end_date = NULL, failure_reason = NULL,
    updated_at = EXCLUDED.updated_at
"""


async def _dag_run_queued(conn: asyncpg.Connection, env: ev.Envelope) -> None:
    p: ev.DagRunQueued = env.data
    await conn.execute(
        _UPSERT_RUN_QUEUED,
        p.dag_id,
        p.run_id,
        p.run_type,
        p.conf,
        p.logical_date,
        p.queued_at,
        p.version_id,
        p.triggered_by,
        p.note,
        env.time,
    )
    await conn.execute(_ENSURE_TIS_FOR_RUN, p.dag_id, p.run_id)


async def _dag_run_started(conn: asyncpg.Connection, env: ev.Envelope) -> None:
    p: ev.DagRunStarted = env.data
    await conn.execute(
        "UPDATE dag_runs SET state = 'running', start_date = $3, updated_at = $4"
        " WHERE dag_id = $1 AND run_id = $2",
        p.dag_id,
        p.run_id,
        p.start_date,
        env.time,
    )


async def _dag_run_succeeded(conn: asyncpg.Connection, env: ev.Envelope) -> None:
    p: ev.DagRunSucceeded = env.data
    await conn.execute(
        "UPDATE dag_runs SET state = 'success', end_date = $3, updated_at = $4"
        " WHERE dag_id = $1 AND run_id = $2",
        p.dag_id,
        p.run_id,
        p.end_date,
        env.time,
    )


async def _dag_run_failed(conn: asyncpg.Connection, env: ev.Envelope) -> None:
    p: ev.DagRunFailed = env.data
    await conn.execute(
        "UPDATE dag_runs SET state = 'failed', end_date = $3, failure_reason = $4,"
        " updated_at = $5 WHERE dag_id = $1 AND run_id = $2",
        p.dag_id,
        p.run_id,
        p.end_date,
        p.reason,
        env.time,
    )


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


async def _ti_queued(conn: asyncpg.Connection, env: ev.Envelope) -> None:
    p: ev.TaskInstanceQueued = env.data
    key = (p.dag_id, p.run_id, p.task_id, p.map_index)
    await conn.execute(
        _TI_QUEUED, *key, p.try_number, p.queued_when, p.queue, p.pool, p.priority_weight
    )
    await conn.execute(_ATTEMPT_QUEUED, *key, p.try_number, p.queued_when)


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


async def _attempt_started(conn: asyncpg.Connection, env: ev.Envelope) -> None:
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
    await conn.execute(_TI_STARTED, *args)
    await conn.execute(_ATTEMPT_STARTED, *args)


# A finished attempt: $5 try, $6 state ('success' or NULL for a failure, whose task
# instance state the scheduler decides), $7 end_date, $8 executor_id, $9 return_value.
_TI_FINISHED = f"""
INSERT INTO task_instances AS ti ({_TI_KEY}, try_number, state, end_date, executor_id,
                                  return_value)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT ({_TI_KEY}) DO UPDATE SET
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


async def _attempt_succeeded(conn: asyncpg.Connection, env: ev.Envelope) -> None:
    p: ev.TaskAttemptSucceeded = env.data
    key = (p.dag_id, p.run_id, p.task_id, p.map_index, p.try_number)
    await conn.execute(_TI_FINISHED, *key, "success", p.end_date, p.executor_id, p.return_value)
    await conn.execute(
        _ATTEMPT_FINISHED,
        *key,
        "success",
        p.end_date,
        p.executor_id,
        p.return_value,
        None,
        None,
        None,
    )


async def _attempt_failed(conn: asyncpg.Connection, env: ev.Envelope) -> None:
    p: ev.TaskAttemptFailed = env.data
    key = (p.dag_id, p.run_id, p.task_id, p.map_index, p.try_number)
    await conn.execute(_TI_FINISHED, *key, None, p.end_date, p.executor_id, None)
    await conn.execute(
        _ATTEMPT_FINISHED,
        *key,
        "failed",
        p.end_date,
        p.executor_id,
        None,
        p.error,
        p.error_type,
        p.retryable,
    )


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


async def _ti_up_for_retry(conn: asyncpg.Connection, env: ev.Envelope) -> None:
    p: ev.TaskInstanceUpForRetry = env.data
    key = (p.dag_id, p.run_id, p.task_id, p.map_index, p.try_number)
    await conn.execute(_TI_VERDICT, *key, "up_for_retry", None, p.retry_at)
    await conn.execute(_ATTEMPT_CLOSE, *key, env.time)


async def _ti_failed(conn: asyncpg.Connection, env: ev.Envelope) -> None:
    p: ev.TaskInstanceFailed = env.data
    key = (p.dag_id, p.run_id, p.task_id, p.map_index, p.try_number)
    await conn.execute(_TI_VERDICT, *key, "failed", p.end_date, None)
    await conn.execute(_ATTEMPT_CLOSE, *key, p.end_date)


# Skipped / upstream_failed: decided without running; Airflow sets start = end = then.
_TI_NOT_RUN = f"""
INSERT INTO task_instances AS ti ({_TI_KEY}, state, start_date, end_date, duration)
VALUES ($1, $2, $3, $4, $5, $6, $6, 0)
ON CONFLICT ({_TI_KEY}) DO UPDATE SET
    state = EXCLUDED.state,
    start_date = COALESCE(ti.start_date, EXCLUDED.start_date),
    end_date = EXCLUDED.end_date,
    duration = COALESCE(extract(epoch FROM EXCLUDED.end_date
                                          - COALESCE(ti.start_date, EXCLUDED.start_date))::float8, 0)
"""


async def _ti_upstream_failed(conn: asyncpg.Connection, env: ev.Envelope) -> None:
    p: ev.TaskInstanceUpstreamFailed = env.data
    await conn.execute(
        _TI_NOT_RUN, p.dag_id, p.run_id, p.task_id, p.map_index, "upstream_failed", p.at
    )


async def _ti_skipped(conn: asyncpg.Connection, env: ev.Envelope) -> None:
    p: ev.TaskInstanceSkipped = env.data
    await conn.execute(_TI_NOT_RUN, p.dag_id, p.run_id, p.task_id, p.map_index, "skipped", p.at)


# --------------------------------------------------------------------------- logs

_INSERT_LOG_CHUNK = """
INSERT INTO task_logs (dag_id, run_id, task_id, map_index, try_number, chunk, lines)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT DO NOTHING
"""


async def _log_chunk(conn: asyncpg.Connection, env: ev.Envelope) -> None:
    p: ev.TaskLogChunk = env.data
    lines = [line.model_dump(mode="json") for line in p.lines]
    await conn.execute(
        _INSERT_LOG_CHUNK, p.dag_id, p.run_id, p.task_id, p.map_index, p.try_number, p.chunk, lines
    )


# Commands (TriggerDagRun, SetDagPaused), TriggerRejected and work items are kept in
# ``events`` only: the facts the scheduler derives from them change the read tables.
_HANDLERS: dict[type[Any], Handler] = {
    ev.DagVersionPublished: _dag_version_published,
    ev.DagPauseChanged: _dag_pause_changed,
    ev.DagRunQueued: _dag_run_queued,
    ev.DagRunStarted: _dag_run_started,
    ev.DagRunSucceeded: _dag_run_succeeded,
    ev.DagRunFailed: _dag_run_failed,
    ev.TaskInstanceQueued: _ti_queued,
    ev.TaskAttemptStarted: _attempt_started,
    ev.TaskAttemptSucceeded: _attempt_succeeded,
    ev.TaskAttemptFailed: _attempt_failed,
    ev.TaskInstanceUpForRetry: _ti_up_for_retry,
    ev.TaskInstanceFailed: _ti_failed,
    ev.TaskInstanceUpstreamFailed: _ti_upstream_failed,
    ev.TaskInstanceSkipped: _ti_skipped,
    ev.TaskLogChunk: _log_chunk,
}
