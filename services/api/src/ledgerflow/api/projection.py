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

The registry maps a payload type to ``async handler(conn, envelope)``. The hot handlers
(task instance facts, executor reports, log chunks) are :class:`PlannedHandler` objects: a
pure *plan*, the statements one event runs, in order, each registered with
:func:`~ledgerflow.api.projection_base.planned_sql`. Called, a planned handler runs its plan
statement by statement; the projector's batch path (:mod:`ledgerflow.api.projection_batch`)
sends the plans of consecutive events, in the same order, in one round trip through the
dispatch function (:mod:`ledgerflow.api.projection_dispatch`). Both paths run the same SQL
with the same arguments, so they cannot drift.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from ledgerflow.api import projection_task_model as task_model
from ledgerflow.api.projection_base import Handler, PlannedHandler, Statement, planned_sql
from ledgerflow.api.projection_config import CONFIG_HANDLERS
from ledgerflow.api.projection_tasks import _TI_NOT_RUN, TASK_HANDLERS, UNSTORED
from ledgerflow.common import events as ev

__all__ = ["Handler", "PlannedHandler", "Statement", "UNSTORED", "apply_event", "handler_for"]


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
    if isinstance(envelope.data, UNSTORED):  # applied, never stored (idempotent)
        await _HANDLERS[type(envelope.data)](conn, envelope)
        return True
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

# A task has one row at map index -1, except a mapped task once expanded
# (``task_map``): then one row per map index 0 .. length-1 (-1 again when length is 0,
# the placeholder that is skipped).
_ENSURE_TASK_INSTANCES = """
INSERT INTO task_instances AS ti (dag_id, run_id, task_id, map_index, operator, queue, pool,
                                  priority_weight, max_tries)
SELECT r.dag_id, r.run_id, t->>'task_id', mi.map_index, t->>'operator', t->>'queue',
       t->>'pool', (t->>'priority_weight')::integer, (t->>'retries')::integer
FROM dag_runs r
JOIN dag_versions v ON v.version_id = r.version_id
CROSS JOIN LATERAL jsonb_array_elements(v.serialized_dag->'tasks') AS t
LEFT JOIN task_map m ON m.dag_id = r.dag_id AND m.run_id = r.run_id
                    AND m.task_id = t->>'task_id'
CROSS JOIN LATERAL generate_series(CASE WHEN m.length > 0 THEN 0 ELSE -1 END,
                                   CASE WHEN m.length > 0 THEN m.length - 1 ELSE -1 END)
    AS mi(map_index)
WHERE {where}
ON CONFLICT (dag_id, run_id, task_id, map_index) DO UPDATE SET
    operator = COALESCE(ti.operator, EXCLUDED.operator),
    queue = COALESCE(ti.queue, EXCLUDED.queue),
    pool = COALESCE(ti.pool, EXCLUDED.pool),
    priority_weight = COALESCE(ti.priority_weight, EXCLUDED.priority_weight),
    max_tries = COALESCE(ti.max_tries, EXCLUDED.max_tries)
"""
_ENSURE_TIS_FOR_VERSION = _ENSURE_TASK_INSTANCES.format(where="r.version_id = $1")
_ENSURE_TIS_FOR_RUN = planned_sql(
    _ENSURE_TASK_INSTANCES.format(where="r.dag_id = $1 AND r.run_id = $2")
)


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

_UPSERT_RUN_QUEUED = planned_sql("""
INSERT INTO dag_runs AS r (dag_id, run_id, state, run_type, conf, logical_date, queued_at,
                           version_id, triggered_by, note, updated_at,
                           data_interval_start, data_interval_end, run_after)
VALUES ($1, $2, 'queued', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
ON CONFLICT (dag_id, run_id) DO UPDATE SET
    state = 'queued', run_type = EXCLUDED.run_type, conf = EXCLUDED.conf,
    logical_date = EXCLUDED.logical_date, queued_at = EXCLUDED.queued_at,
    version_id = EXCLUDED.version_id, triggered_by = EXCLUDED.triggered_by,
    note = EXCLUDED.note, start_date = NULL, end_date = NULL, failure_reason = NULL,
    updated_at = EXCLUDED.updated_at, data_interval_start = EXCLUDED.data_interval_start,
    data_interval_end = EXCLUDED.data_interval_end, run_after = EXCLUDED.run_after
""")


def _plan_dag_run_queued(env: ev.Envelope) -> list[Statement]:
    p: ev.DagRunQueued = env.data
    return [
        (
            _UPSERT_RUN_QUEUED,
            (
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
                p.data_interval_start,
                p.data_interval_end,
                p.run_after,
            ),
        ),
        (_ENSURE_TIS_FOR_RUN, (p.dag_id, p.run_id)),
    ]


_dag_run_queued = PlannedHandler(_plan_dag_run_queued)

_RUN_STARTED = planned_sql(
    "UPDATE dag_runs SET state = 'running', start_date = $3, updated_at = $4"
    " WHERE dag_id = $1 AND run_id = $2"
)
_RUN_SUCCEEDED = planned_sql(
    "UPDATE dag_runs SET state = 'success', end_date = $3, updated_at = $4"
    " WHERE dag_id = $1 AND run_id = $2"
)
_RUN_FAILED = planned_sql(
    "UPDATE dag_runs SET state = 'failed', end_date = $3, failure_reason = $4,"
    " updated_at = $5 WHERE dag_id = $1 AND run_id = $2"
)


def _plan_dag_run_started(env: ev.Envelope) -> list[Statement]:
    p: ev.DagRunStarted = env.data
    return [(_RUN_STARTED, (p.dag_id, p.run_id, p.start_date, env.time))]


def _plan_dag_run_succeeded(env: ev.Envelope) -> list[Statement]:
    p: ev.DagRunSucceeded = env.data
    return [(_RUN_SUCCEEDED, (p.dag_id, p.run_id, p.end_date, env.time))]


def _plan_dag_run_failed(env: ev.Envelope) -> list[Statement]:
    p: ev.DagRunFailed = env.data
    return [(_RUN_FAILED, (p.dag_id, p.run_id, p.end_date, p.reason, env.time))]


_dag_run_started = PlannedHandler(_plan_dag_run_started)
_dag_run_succeeded = PlannedHandler(_plan_dag_run_succeeded)
_dag_run_failed = PlannedHandler(_plan_dag_run_failed)


async def _ti_map_expanded(conn: asyncpg.Connection, env: ev.Envelope) -> None:
    """A mapped task's indexes are known: rows 0 .. length-1 replace the placeholder
    (their operator etc. come from the run's version, now or when it is projected)."""
    p: ev.TaskInstanceMapExpanded = env.data
    await task_model.record_map_expansion(conn, p)
    await conn.execute(_ENSURE_TIS_FOR_RUN, p.dag_id, p.run_id)
    if p.length == 0:  # nothing to map over: the placeholder is skipped
        await conn.execute(_TI_NOT_RUN, p.dag_id, p.run_id, p.task_id, -1, "skipped", p.at)


# Commands (TriggerDagRun, SetDagPaused), TriggerRejected and work items are kept in
# ``events`` only: the facts the scheduler derives from them change the read tables.
_HANDLERS: dict[type[Any], Handler] = {
    ev.DagVersionPublished: _dag_version_published,
    ev.DagPauseChanged: _dag_pause_changed,
    ev.DagRunQueued: _dag_run_queued,
    ev.DagRunStarted: _dag_run_started,
    ev.DagRunSucceeded: _dag_run_succeeded,
    ev.DagRunFailed: _dag_run_failed,
    ev.TaskInstanceMapExpanded: _ti_map_expanded,
}
# Task instances, attempts, logs and heartbeats: the hot handlers, in their own module.
_HANDLERS.update(TASK_HANDLERS)

# Variables and connections (config topic): handlers in their own module.
_HANDLERS.update(CONFIG_HANDLERS)


def handler_for(payload_type: type[Any]) -> Handler | None:
    """The handler registered for a payload type (None: kept in ``events`` only)."""
    return _HANDLERS.get(payload_type)


# Users and API keys (config topic); imported here so this stays a one-line hook.
from ledgerflow.api.projection_users import USER_HANDLERS  # noqa: E402

_HANDLERS.update(USER_HANDLERS)

# Pools, zombies, clears and marks (issue 4): handlers in their own modules.
from ledgerflow.api.projection_pools import POOL_HANDLERS  # noqa: E402

_HANDLERS.update(POOL_HANDLERS)

# DAG and run deletion, import errors (issue 5): handlers in their own module.
from ledgerflow.api.projection_dag_lifecycle import LIFECYCLE_HANDLERS  # noqa: E402

_HANDLERS.update(LIFECYCLE_HANDLERS)

# Backfills (issue 6): handlers in their own module.
from ledgerflow.api.projection_backfills import BACKFILL_HANDLERS  # noqa: E402

_HANDLERS.update(BACKFILL_HANDLERS)

# Assets (issue 6, ADR 0013): asset events, DAG asset references, created runs.
from ledgerflow.api.projection_assets import (  # noqa: E402
    ASSET_HANDLERS,
    created_runs_plan,
    with_asset_refs,
    without_asset_refs,
)

_HANDLERS.update(ASSET_HANDLERS)
_HANDLERS[ev.DagVersionPublished] = with_asset_refs(_HANDLERS[ev.DagVersionPublished])
_HANDLERS[ev.DagDeleted] = without_asset_refs(_HANDLERS[ev.DagDeleted])
_queued = _HANDLERS[ev.DagRunQueued]
assert isinstance(_queued, PlannedHandler)
_HANDLERS[ev.DagRunQueued] = PlannedHandler(
    lambda env, plan=_queued.plan: [*plan(env), *created_runs_plan(env)]
)
