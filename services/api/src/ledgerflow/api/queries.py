"""Read queries over the projection, returning response models.

All SQL the HTTP routes need lives here. Names are unqualified: the pool's
``search_path`` points at the live projection schema (see :mod:`ledgerflow.api.db`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
from ledgerflow.api import schemas

_TI_ID_NAMESPACE = uuid.UUID("0b7c7e0e-6a43-4f7b-9a7e-3f1b2d4c5e6f")

# ----------------------------------------------------------------------------- DAGs

_DAG_COLUMNS = """
d.dag_id, d.is_paused, d.latest_version_id, d.description, d.fileloc, d.filename,
d.schedule, d.tags, d.owners, d.max_active_runs, d.max_active_tasks, d.last_parsed_time,
v.version_number AS latest_version_number
"""
_DAG_FROM = "dags d LEFT JOIN dag_versions v ON v.version_id = d.latest_version_id"

DAG_ORDERINGS = {
    "dag_id": "d.dag_id",
    "-dag_id": "d.dag_id DESC",
    "last_parsed_time": "d.last_parsed_time NULLS FIRST, d.dag_id",
    "-last_parsed_time": "d.last_parsed_time DESC NULLS LAST, d.dag_id",
}


def _dag(row: asyncpg.Record) -> schemas.DagResponse:
    return schemas.DagResponse(
        dag_id=row["dag_id"],
        dag_display_name=row["dag_id"],
        is_paused=row["is_paused"],
        last_parsed_time=row["last_parsed_time"],
        fileloc=row["fileloc"],
        relative_fileloc=row["filename"],
        description=row["description"],
        timetable_summary=row["schedule"],
        tags=[schemas.DagTag(name=t, dag_id=row["dag_id"]) for t in row["tags"]],
        owners=list(row["owners"]),
        max_active_runs=row["max_active_runs"],
        max_active_tasks=row["max_active_tasks"],
        latest_version_id=row["latest_version_id"],
        latest_version_number=row["latest_version_number"],
    )


async def list_dags(
    conn: asyncpg.Connection,
    *,
    limit: int,
    offset: int,
    order_by: str = "dag_id",
    paused: bool | None = None,
    dag_id_pattern: str | None = None,
    tags: Sequence[str] = (),
) -> schemas.DagCollectionResponse:
    """DAGs known to the projection (those with at least one version)."""
    where = ["d.latest_version_id IS NOT NULL"]
    args: list[Any] = []
    if paused is not None:
        args.append(paused)
        where.append(f"d.is_paused = ${len(args)}")
    if dag_id_pattern:
        args.append(dag_id_pattern)  # SQL LIKE pattern, as in Airflow
        where.append(f"d.dag_id ILIKE ${len(args)}")
    if tags:
        args.append(list(tags))
        where.append(f"d.tags && ${len(args)}::text[]")
    clause = " AND ".join(where)
    total = await conn.fetchval(f"SELECT count(*) FROM {_DAG_FROM} WHERE {clause}", *args)
    rows = await conn.fetch(
        f"SELECT {_DAG_COLUMNS} FROM {_DAG_FROM} WHERE {clause}"
        f" ORDER BY {DAG_ORDERINGS[order_by]} LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}",
        *args,
        limit,
        offset,
    )
    return schemas.DagCollectionResponse(dags=[_dag(r) for r in rows], total_entries=total)


async def get_dag(conn: asyncpg.Connection, dag_id: str) -> schemas.DagResponse | None:
    row = await conn.fetchrow(
        f"SELECT {_DAG_COLUMNS} FROM {_DAG_FROM}"
        " WHERE d.dag_id = $1 AND d.latest_version_id IS NOT NULL",
        dag_id,
    )
    return _dag(row) if row is not None else None


# ----------------------------------------------------------------------------- DAG runs

_RUN_COLUMNS = """
r.dag_id, r.run_id, r.state, r.run_type, r.conf, r.logical_date, r.queued_at, r.start_date,
r.end_date, r.version_id, r.triggered_by, r.note, v.version_number
"""
_RUN_FROM = "dag_runs r LEFT JOIN dag_versions v ON v.version_id = r.version_id"

RUN_ORDERINGS = {
    "queued_at": "r.queued_at, r.run_id",
    "-queued_at": "r.queued_at DESC, r.run_id DESC",
    "start_date": "r.start_date NULLS LAST, r.run_id",
    "-start_date": "r.start_date DESC NULLS LAST, r.run_id DESC",
    "end_date": "r.end_date NULLS LAST, r.run_id",
    "-end_date": "r.end_date DESC NULLS LAST, r.run_id DESC",
    "logical_date": "r.logical_date NULLS LAST, r.run_id",
    "-logical_date": "r.logical_date DESC NULLS LAST, r.run_id DESC",
    "run_id": "r.run_id",
    "-run_id": "r.run_id DESC",
}


def _run(row: asyncpg.Record) -> schemas.DagRunResponse:
    version = row["version_id"]
    return schemas.DagRunResponse(
        dag_run_id=row["run_id"],
        dag_id=row["dag_id"],
        state=row["state"],
        run_type=row["run_type"],
        conf=row["conf"] or {},
        logical_date=row["logical_date"],
        queued_at=row["queued_at"],
        start_date=row["start_date"],
        end_date=row["end_date"],
        run_after=row["logical_date"] or row["queued_at"],
        triggered_by=row["triggered_by"],
        note=row["note"],
        dag_version_id=version,
        dag_versions=[
            schemas.DagVersionRef(
                id=version, version_number=row["version_number"], dag_id=row["dag_id"]
            )
        ]
        if version
        else [],
    )


async def list_dag_runs(
    conn: asyncpg.Connection,
    dag_id: str | None,
    *,
    limit: int,
    offset: int,
    order_by: str = "queued_at",
    states: Sequence[str] = (),
) -> schemas.DagRunCollectionResponse:
    """Runs of one DAG, or of every DAG when ``dag_id`` is None (Airflow's ``~``)."""
    where = ["TRUE"]
    args: list[Any] = []
    if dag_id is not None:
        args.append(dag_id)
        where.append(f"r.dag_id = ${len(args)}")
    if states:
        args.append(list(states))
        where.append(f"r.state = ANY(${len(args)}::text[])")
    clause = " AND ".join(where)
    total = await conn.fetchval(f"SELECT count(*) FROM {_RUN_FROM} WHERE {clause}", *args)
    rows = await conn.fetch(
        f"SELECT {_RUN_COLUMNS} FROM {_RUN_FROM} WHERE {clause}"
        f" ORDER BY {RUN_ORDERINGS[order_by]} LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}",
        *args,
        limit,
        offset,
    )
    return schemas.DagRunCollectionResponse(dag_runs=[_run(r) for r in rows], total_entries=total)


async def get_dag_run(
    conn: asyncpg.Connection, dag_id: str, run_id: str
) -> schemas.DagRunResponse | None:
    row = await conn.fetchrow(
        f"SELECT {_RUN_COLUMNS} FROM {_RUN_FROM} WHERE r.dag_id = $1 AND r.run_id = $2",
        dag_id,
        run_id,
    )
    return _run(row) if row is not None else None


async def dag_run_exists(conn: asyncpg.Connection, dag_id: str, run_id: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT 1 FROM dag_runs WHERE dag_id = $1 AND run_id = $2", dag_id, run_id
        )
    )


# ----------------------------------------------------------------------------- task instances

_TI_SELECT = """
SELECT ti.*, r.logical_date, r.version_id
FROM task_instances ti
JOIN dag_runs r ON r.dag_id = ti.dag_id AND r.run_id = ti.run_id
"""


def _task_instance(row: asyncpg.Record) -> schemas.TaskInstanceResponse:
    key = (row["dag_id"], row["run_id"], row["task_id"], row["map_index"])
    return schemas.TaskInstanceResponse(
        id=str(uuid.uuid5(_TI_ID_NAMESPACE, "\x1f".join(map(str, key)))),
        task_id=row["task_id"],
        task_display_name=row["task_id"],
        dag_id=row["dag_id"],
        dag_run_id=row["run_id"],
        map_index=row["map_index"],
        logical_date=row["logical_date"],
        state=row["state"],
        try_number=row["try_number"],
        max_tries=row["max_tries"],
        start_date=row["start_date"],
        end_date=row["end_date"],
        duration=row["duration"],
        queued_when=row["queued_when"],
        hostname=row["hostname"],
        pid=row["pid"],
        operator=row["operator"],
        operator_name=row["operator"],
        queue=row["queue"],
        pool=row["pool"],
        priority_weight=row["priority_weight"],
        dag_version_id=row["version_id"],
    )


async def list_task_instances(
    conn: asyncpg.Connection, dag_id: str, run_id: str, *, limit: int, offset: int
) -> schemas.TaskInstanceCollectionResponse:
    total = await conn.fetchval(
        "SELECT count(*) FROM task_instances WHERE dag_id = $1 AND run_id = $2", dag_id, run_id
    )
    rows = await conn.fetch(
        _TI_SELECT + " WHERE ti.dag_id = $1 AND ti.run_id = $2"
        " ORDER BY ti.task_id, ti.map_index LIMIT $3 OFFSET $4",
        dag_id,
        run_id,
        limit,
        offset,
    )
    return schemas.TaskInstanceCollectionResponse(
        task_instances=[_task_instance(r) for r in rows], total_entries=total
    )


async def get_task_instance(
    conn: asyncpg.Connection, dag_id: str, run_id: str, task_id: str, map_index: int
) -> schemas.TaskInstanceResponse | None:
    row = await conn.fetchrow(
        _TI_SELECT + " WHERE ti.dag_id = $1 AND ti.run_id = $2 AND ti.task_id = $3"
        " AND ti.map_index = $4",
        dag_id,
        run_id,
        task_id,
        map_index,
    )
    return _task_instance(row) if row is not None else None


async def task_log_lines(
    conn: asyncpg.Connection,
    dag_id: str,
    run_id: str,
    task_id: str,
    map_index: int,
    try_number: int,
) -> list[schemas.LogLineResponse]:
    """Every line of one attempt's log, in chunk order."""
    rows = await conn.fetch(
        "SELECT lines FROM task_logs WHERE dag_id = $1 AND run_id = $2 AND task_id = $3"
        " AND map_index = $4 AND try_number = $5 ORDER BY chunk",
        dag_id,
        run_id,
        task_id,
        map_index,
        try_number,
    )
    return [
        schemas.LogLineResponse(timestamp=line["ts"], event=line["text"], stream=line["stream"])
        for row in rows
        for line in row["lines"]
    ]


# ----------------------------------------------------------------------------- projector state


async def projector_offsets(conn: asyncpg.Connection) -> dict[tuple[str, int], int]:
    rows = await conn.fetch("SELECT topic, kafka_partition, next_offset FROM projector_offsets")
    return {(r["topic"], r["kafka_partition"]): r["next_offset"] for r in rows}


async def projector_status(conn: asyncpg.Connection) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT updated_at, events_applied, dead_lettered, last_event_time FROM projector_status"
    )
    return dict(row) if row is not None else None
