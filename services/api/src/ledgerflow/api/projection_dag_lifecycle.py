"""Projection handlers for DAG deletion, run deletion and import errors (issue 5).

Deletion facts remove rows from the read tables; the raw event store keeps every event,
so history (``/eventLogs``, ``.../events``) survives. A deleted DAG keeps its ``dags``
row with ``latest_version_id`` NULL (hidden by every query), so its pause flag, which
the scheduler still holds, stays in step when the DAG is submitted again.

Known limit: ``DagDeleted`` travels on the dags topic and run facts on the runs topic,
so a rebuild may replay a deleted DAG's run facts after its deletion and leave their
rows behind (hidden while the DAG stays deleted). ``DagRunDeleted`` has the same limit
for facts the scheduler writes after it.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from ledgerflow.common import events as ev

_RUN_TABLES = (
    "task_logs",
    "task_attempts",
    "task_reschedule",
    "task_map",
    "xcom",
    "task_instances",
    "dag_runs",
)

_UNSET_DAG = """
UPDATE dags SET latest_version_id = NULL, last_parsed_time = NULL,
                updated_at = GREATEST(updated_at, $2)
WHERE dag_id = $1
"""


async def _dag_deleted(conn: asyncpg.Connection, env: ev.Envelope) -> None:
    p: ev.DagDeleted = env.data
    for table in _RUN_TABLES:
        await conn.execute(f"DELETE FROM {table} WHERE dag_id = $1", p.dag_id)
    await conn.execute("DELETE FROM dag_versions WHERE dag_id = $1", p.dag_id)
    await conn.execute(_UNSET_DAG, p.dag_id, env.time)


async def _dag_run_deleted(conn: asyncpg.Connection, env: ev.Envelope) -> None:
    p: ev.DagRunDeleted = env.data
    for table in _RUN_TABLES:
        await conn.execute(
            f"DELETE FROM {table} WHERE dag_id = $1 AND run_id = $2", p.dag_id, p.run_id
        )


_UPSERT_IMPORT_ERROR = """
INSERT INTO import_errors AS e (filename, timestamp, message, kind, lineno, stack_trace,
                                submitted_by)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (filename) DO UPDATE SET
    timestamp = EXCLUDED.timestamp, message = EXCLUDED.message, kind = EXCLUDED.kind,
    lineno = EXCLUDED.lineno, stack_trace = EXCLUDED.stack_trace,
    submitted_by = EXCLUDED.submitted_by
"""


async def _import_failed(conn: asyncpg.Connection, env: ev.Envelope) -> None:
    p: ev.DagFileImportFailed = env.data
    await conn.execute(
        _UPSERT_IMPORT_ERROR,
        p.filename,
        env.time,
        p.message,
        p.kind,
        p.lineno,
        p.stack_trace or p.message,
        p.submitted_by,
    )


async def _imported(conn: asyncpg.Connection, env: ev.Envelope) -> None:
    p: ev.DagFileImported = env.data
    await conn.execute("DELETE FROM import_errors WHERE filename = $1", p.filename)


LIFECYCLE_HANDLERS: dict[type[Any], Any] = {
    ev.DagDeleted: _dag_deleted,
    ev.DagRunDeleted: _dag_run_deleted,
    ev.DagFileImportFailed: _import_failed,
    ev.DagFileImported: _imported,
}
"""Registered in :data:`ledgerflow.api.projection._HANDLERS`."""
