"""Read queries for DAG versions and sources, task instance tries, run lists with
Airflow's filters, and import errors (issue 5). Same rules as :mod:`queries`: SQL only
here, unqualified names (the pool's ``search_path`` is the live projection)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
from ledgerflow.api import airflow_models as m
from ledgerflow.api import queries, schemas

_NO_PROJECTION = (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError)

# --------------------------------------------------------------------------- DAG versions
_VERSION_COLUMNS = "v.version_id, v.version_number, v.dag_id, v.created_at"
VERSION_ORDERINGS = {
    "id": "v.version_id",
    "-id": "v.version_id DESC",
    "version_number": "v.dag_id, v.version_number",
    "-version_number": "v.dag_id DESC, v.version_number DESC",
    "bundle_name": "v.dag_id, v.version_number",
    "-bundle_name": "v.dag_id DESC, v.version_number DESC",
    "bundle_version": "v.dag_id, v.version_number",
    "-bundle_version": "v.dag_id DESC, v.version_number DESC",
}


def _version(row: asyncpg.Record) -> m.DagVersionResponse:
    return m.DagVersionResponse(
        id=row["version_id"],
        version_number=row["version_number"],
        dag_id=row["dag_id"],
        created_at=row["created_at"],
        dag_display_name=row["dag_id"],
    )


async def list_dag_versions(
    conn: asyncpg.Connection,
    dag_id: str | None,
    *,
    limit: int,
    offset: int,
    order_by: str = "version_number",
    version_number: int | None = None,
) -> m.DAGVersionCollectionResponse:
    """Versions of a DAG (every DAG when ``dag_id`` is None), oldest first."""
    where = ["TRUE"]
    args: list[Any] = []
    if dag_id is not None:
        args.append(dag_id)
        where.append(f"v.dag_id = ${len(args)}")
    if version_number is not None:
        args.append(version_number)
        where.append(f"v.version_number = ${len(args)}")
    clause = " AND ".join(where)
    total = await conn.fetchval(f"SELECT count(*) FROM dag_versions v WHERE {clause}", *args)
    rows = await conn.fetch(
        f"SELECT {_VERSION_COLUMNS} FROM dag_versions v WHERE {clause}"
        f" ORDER BY {VERSION_ORDERINGS[order_by]} LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}",
        *args,
        limit,
        offset,
    )
    return m.DAGVersionCollectionResponse(
        dag_versions=[_version(r) for r in rows], total_entries=total
    )


async def get_dag_version(
    conn: asyncpg.Connection, dag_id: str, version_number: int
) -> m.DagVersionResponse | None:
    row = await conn.fetchrow(
        f"SELECT {_VERSION_COLUMNS} FROM dag_versions v"
        " WHERE v.dag_id = $1 AND v.version_number = $2",
        dag_id,
        version_number,
    )
    return _version(row) if row is not None else None


async def dag_source(
    conn: asyncpg.Connection, dag_id: str, version_number: int | None
) -> m.DAGSourceResponse | None:
    """The source of a version, or of the latest one when ``version_number`` is None."""
    if version_number is None:
        row = await conn.fetchrow(
            "SELECT v.source_code, v.version_number FROM dags d"
            " JOIN dag_versions v ON v.version_id = d.latest_version_id WHERE d.dag_id = $1",
            dag_id,
        )
    else:
        row = await conn.fetchrow(
            "SELECT source_code, version_number FROM dag_versions"
            " WHERE dag_id = $1 AND version_number = $2",
            dag_id,
            version_number,
        )
    if row is None:
        return None
    return m.DAGSourceResponse(
        content=row["source_code"],
        dag_id=dag_id,
        version_number=row["version_number"],
        dag_display_name=dag_id,
    )


# --------------------------------------------------------------------------- tries
_TRY_SELECT = """
SELECT a.dag_id, a.run_id, a.task_id, a.map_index, a.try_number, a.state, a.queued_when,
       a.start_date, a.end_date, a.duration, a.hostname, a.pid, a.error,
       ti.max_tries, ti.pool, ti.pool_slots, ti.queue, ti.priority_weight, ti.operator,
       v.version_id, v.version_number, v.created_at AS version_created_at
FROM task_attempts a
JOIN task_instances ti ON (ti.dag_id, ti.run_id, ti.task_id, ti.map_index)
                        = (a.dag_id, a.run_id, a.task_id, a.map_index)
JOIN dag_runs r ON r.dag_id = a.dag_id AND r.run_id = a.run_id
LEFT JOIN dag_versions v ON v.version_id = r.version_id
WHERE a.dag_id = $1 AND a.run_id = $2 AND a.task_id = $3 AND a.map_index = $4
"""


def _try(row: asyncpg.Record) -> m.TaskInstanceHistoryResponse:
    version = None
    if row["version_id"] is not None:
        version = m.DagVersionResponse(
            id=row["version_id"],
            version_number=row["version_number"],
            dag_id=row["dag_id"],
            created_at=row["version_created_at"],
            dag_display_name=row["dag_id"],
        )
    state = row["state"]
    return m.TaskInstanceHistoryResponse(
        task_id=row["task_id"],
        dag_id=row["dag_id"],
        dag_run_id=row["run_id"],
        map_index=row["map_index"],
        start_date=row["start_date"],
        end_date=row["end_date"],
        duration=row["duration"],
        state=state if state in _TI_STATES else None,
        try_number=row["try_number"],
        max_tries=row["max_tries"] or 0,
        task_display_name=row["task_id"],
        dag_display_name=row["dag_id"],
        hostname=row["hostname"],
        pool=row["pool"] or "default_pool",
        pool_slots=row["pool_slots"] or 1,
        queue=row["queue"],
        priority_weight=row["priority_weight"],
        operator=row["operator"],
        operator_name=row["operator"],
        queued_when=row["queued_when"],
        pid=row["pid"],
        dag_version=version,
        retry_reason=row["error"],
    )


_TI_STATES = frozenset(schemas.TaskInstanceState.__args__)


async def task_instance_tries(
    conn: asyncpg.Connection,
    dag_id: str,
    run_id: str,
    task_id: str,
    map_index: int,
    try_number: int | None = None,
) -> list[m.TaskInstanceHistoryResponse]:
    """Every try of a task instance (or just ``try_number``), oldest first."""
    args: list[Any] = [dag_id, run_id, task_id, map_index]
    sql = _TRY_SELECT
    if try_number is not None:
        args.append(try_number)
        sql += " AND a.try_number = $5"
    rows = await conn.fetch(sql + " ORDER BY a.try_number", *args)
    return [_try(r) for r in rows]


# --------------------------------------------------------------------------- runs
RUN_AFTER = "COALESCE(r.run_after, r.logical_date, r.queued_at)"
RUN_COLUMNS_FOR_BOUNDS = {
    "logical_date": "r.logical_date",
    "start_date": "r.start_date",
    "end_date": "r.end_date",
    "updated_at": "r.updated_at",
    "run_after": RUN_AFTER,
    "queued_at": "r.queued_at",
}
RUN_ORDERINGS = {
    **queries.RUN_ORDERINGS,
    "id": "r.dag_id, r.run_id",
    "-id": "r.dag_id DESC, r.run_id DESC",
    "dag_id": "r.dag_id, r.run_id",
    "-dag_id": "r.dag_id DESC, r.run_id DESC",
    "run_after": f"{RUN_AFTER}, r.run_id",
    "-run_after": f"{RUN_AFTER} DESC, r.run_id DESC",
    "dag_run_id": "r.run_id",
    "-dag_run_id": "r.run_id DESC",
    "state": "r.state, r.run_id",
    "-state": "r.state DESC, r.run_id DESC",
    "run_type": "r.run_type, r.run_id",
    "-run_type": "r.run_type DESC, r.run_id DESC",
    "updated_at": "r.updated_at, r.run_id",
    "-updated_at": "r.updated_at DESC, r.run_id DESC",
}
_OPERATORS = frozenset({">=", ">", "<=", "<"})


async def list_runs(
    conn: asyncpg.Connection,
    *,
    dag_ids: Sequence[str] | None,
    limit: int,
    offset: int,
    order_by: str = "queued_at",
    states: Sequence[str] = (),
    run_types: Sequence[str] = (),
    bounds: Sequence[tuple[str, str, datetime]] = (),
) -> schemas.DagRunCollectionResponse:
    """Runs of these DAGs (every DAG's when None) with Airflow's filters; ``bounds`` are
    ``(column, operator, date)`` with a column of :data:`RUN_COLUMNS_FOR_BOUNDS`. Runs
    of deleted DAGs (no latest version) are left out."""
    where = [
        "EXISTS (SELECT 1 FROM dags d WHERE d.dag_id = r.dag_id"
        " AND d.latest_version_id IS NOT NULL)"
    ]
    args: list[Any] = []
    if dag_ids is not None:
        args.append(list(dag_ids))
        where.append(f"r.dag_id = ANY(${len(args)}::text[])")
    if states:
        args.append(list(states))
        where.append(f"r.state = ANY(${len(args)}::text[])")
    if run_types:
        args.append(list(run_types))
        where.append(f"r.run_type = ANY(${len(args)}::text[])")
    for column, operator, value in bounds:
        if operator not in _OPERATORS:
            raise ValueError(f"not a comparison: {operator!r}")
        args.append(value)
        where.append(f"{RUN_COLUMNS_FOR_BOUNDS[column]} {operator} ${len(args)}")
    clause = " AND ".join(where)
    frm = queries._RUN_FROM
    total = await conn.fetchval(f"SELECT count(*) FROM {frm} WHERE {clause}", *args)
    rows = await conn.fetch(
        f"SELECT {queries._RUN_COLUMNS} FROM {frm} WHERE {clause}"
        f" ORDER BY {RUN_ORDERINGS[order_by]} LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}",
        *args,
        limit,
        offset,
    )
    return schemas.DagRunCollectionResponse(
        dag_runs=[queries._run(r) for r in rows], total_entries=total
    )


async def active_run_ids(conn: asyncpg.Connection, dag_id: str) -> list[str]:
    """Runs of the DAG that are queued or running (to fail before a deletion)."""
    rows = await conn.fetch(
        "SELECT run_id FROM dag_runs WHERE dag_id = $1 AND state IN ('queued', 'running')"
        " ORDER BY run_id",
        dag_id,
    )
    return [r["run_id"] for r in rows]


async def latest_deletion_id(conn: asyncpg.Connection, dag_id: str) -> str | None:
    """The event id of the DAG's latest ``DagDeleted`` (a resubmission after it is a new
    publication, not a repeat of the version published before)."""
    try:
        value = await conn.fetchval(
            "SELECT event_id FROM events WHERE aggregate_key = $1 AND event_type = 'DagDeleted'"
            " ORDER BY event_time DESC, kafka_offset DESC LIMIT 1",
            dag_id,
        )
    except _NO_PROJECTION:  # nothing projected yet: nothing was deleted
        return None
    return str(value) if value is not None else None


# --------------------------------------------------------------------------- import errors
IMPORT_ERROR_ORDERINGS = {
    "id": "import_error_id",
    "-id": "import_error_id DESC",
    "import_error_id": "import_error_id",
    "-import_error_id": "import_error_id DESC",
    "timestamp": "timestamp, import_error_id",
    "-timestamp": "timestamp DESC, import_error_id DESC",
    "filename": "filename",
    "-filename": "filename DESC",
}


def _import_error(row: asyncpg.Record) -> m.ImportErrorResponse:
    return m.ImportErrorResponse(
        import_error_id=row["import_error_id"],
        timestamp=row["timestamp"],
        filename=row["filename"],
        stack_trace=row["stack_trace"],
    )


async def list_import_errors(
    conn: asyncpg.Connection,
    *,
    limit: int,
    offset: int,
    order_by: str = "id",
    filename_pattern: str | None = None,
) -> m.ImportErrorCollectionResponse:
    where, args = "TRUE", []
    if filename_pattern:
        where, args = "filename ILIKE $1", [filename_pattern]
    total = await conn.fetchval(f"SELECT count(*) FROM import_errors WHERE {where}", *args)
    rows = await conn.fetch(
        f"SELECT * FROM import_errors WHERE {where} ORDER BY {IMPORT_ERROR_ORDERINGS[order_by]}"
        f" LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}",
        *args,
        limit,
        offset,
    )
    return m.ImportErrorCollectionResponse(
        import_errors=[_import_error(r) for r in rows], total_entries=total
    )


async def get_import_error(
    conn: asyncpg.Connection, import_error_id: int
) -> m.ImportErrorResponse | None:
    row = await conn.fetchrow(
        "SELECT * FROM import_errors WHERE import_error_id = $1", import_error_id
    )
    return _import_error(row) if row is not None else None


async def has_import_error(conn: asyncpg.Connection, filename: str) -> bool:
    try:
        return bool(
            await conn.fetchval("SELECT 1 FROM import_errors WHERE filename = $1", filename)
        )
    except _NO_PROJECTION:
        return False
