"""Read queries over the projection, returning response models.

All SQL the HTTP routes need lives here. Names are unqualified: the pool's
``search_path`` points at the live projection schema (see :mod:`ledgerflow.api.db`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
from ledgerflow.api import next_dagrun, schemas
from ledgerflow.common.dagmodel import SerializedDag

_TI_ID_NAMESPACE = uuid.UUID("0b7c7e0e-6a43-4f7b-9a7e-3f1b2d4c5e6f")

# ----------------------------------------------------------------------------- DAGs

_DAG_COLUMNS = (
    """
d.dag_id, d.is_paused, d.latest_version_id, d.description, d.fileloc, d.filename,
d.schedule, d.tags, d.owners, d.max_active_runs, d.max_active_tasks, d.last_parsed_time,
v.version_number AS latest_version_number,
"""
    + next_dagrun.SCHEDULE_COLUMNS
)
_DAG_FROM = "dags d LEFT JOIN dag_versions v ON v.version_id = d.latest_version_id"
# With the DAG's last scheduled run, for the next_dagrun_* fields.
_DAG_FROM_WITH_LAST = _DAG_FROM + next_dagrun.LAST_SCHEDULED_RUN

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
        **next_dagrun.schedule_fields(row, now=datetime.now(UTC)),
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
        f"SELECT {_DAG_COLUMNS} FROM {_DAG_FROM_WITH_LAST} WHERE {clause}"
        f" ORDER BY {DAG_ORDERINGS[order_by]} LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}",
        *args,
        limit,
        offset,
    )
    return schemas.DagCollectionResponse(dags=[_dag(r) for r in rows], total_entries=total)


async def get_dag(conn: asyncpg.Connection, dag_id: str) -> schemas.DagResponse | None:
    row = await conn.fetchrow(
        f"SELECT {_DAG_COLUMNS} FROM {_DAG_FROM_WITH_LAST}"
        " WHERE d.dag_id = $1 AND d.latest_version_id IS NOT NULL",
        dag_id,
    )
    return _dag(row) if row is not None else None


# ----------------------------------------------------------------------------- DAG runs

_RUN_COLUMNS = """
r.dag_id, r.run_id, r.state, r.run_type, r.conf, r.logical_date, r.queued_at, r.start_date,
r.end_date, r.version_id, r.triggered_by, r.note, v.version_number,
r.data_interval_start, r.data_interval_end, r.run_after
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
        run_after=row["run_after"] or row["logical_date"] or row["queued_at"],
        data_interval_start=row["data_interval_start"],
        data_interval_end=row["data_interval_end"],
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
    logical_date_bounds: Sequence[tuple[str, datetime]] = (),
) -> schemas.DagRunCollectionResponse:
    """Runs of one DAG, or of every DAG when ``dag_id`` is None (Airflow's ``~``).
    ``logical_date_bounds`` are ``(operator, date)`` pairs, the operator one of
    ``>= > <= <`` (Airflow's ``logical_date_gte`` & co.)."""
    where = ["TRUE"]
    args: list[Any] = []
    if dag_id is not None:
        args.append(dag_id)
        where.append(f"r.dag_id = ${len(args)}")
    if states:
        args.append(list(states))
        where.append(f"r.state = ANY(${len(args)}::text[])")
    for operator, bound in logical_date_bounds:
        if operator not in (">=", ">", "<=", "<"):
            raise ValueError(f"not a comparison: {operator!r}")
        args.append(bound)
        where.append(f"r.logical_date {operator} ${len(args)}")
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
SELECT ti.*, r.logical_date, r.version_id,
       COALESCE(r.run_after, r.logical_date, r.queued_at) AS run_after
FROM task_instances ti
JOIN dag_runs r ON r.dag_id = ti.dag_id AND r.run_id = ti.run_id
"""


def task_instance_id(dag_id: str, run_id: str, task_id: str, map_index: int) -> str:
    """The stable id of a task instance in responses (Airflow's ``id`` is a UUID)."""
    key = (dag_id, run_id, task_id, map_index)
    return str(uuid.uuid5(_TI_ID_NAMESPACE, "\x1f".join(map(str, key))))


def _task_instance(row: asyncpg.Record) -> schemas.TaskInstanceResponse:
    return schemas.TaskInstanceResponse(
        id=task_instance_id(row["dag_id"], row["run_id"], row["task_id"], row["map_index"]),
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
        run_after=row["run_after"],
        rendered_fields=row["rendered_fields"] or {},
    )


async def list_task_instances(
    conn: asyncpg.Connection,
    dag_id: str,
    run_id: str,
    *,
    limit: int,
    offset: int,
    task_id: str | None = None,
    states: Sequence[str] = (),
    mapped_only: bool = False,
) -> schemas.TaskInstanceCollectionResponse:
    """Task instances of a run, one per (task, map index), by task id then map index."""
    where = ["ti.dag_id = $1", "ti.run_id = $2"]
    args: list[Any] = [dag_id, run_id]
    if task_id is not None:
        args.append(task_id)
        where.append(f"ti.task_id = ${len(args)}")
    if states:
        args.append(list(states))
        where.append(f"ti.state = ANY(${len(args)}::text[])")
    if mapped_only:
        where.append("ti.map_index >= 0")
    clause = " AND ".join(where)
    total = await conn.fetchval(f"SELECT count(*) FROM task_instances ti WHERE {clause}", *args)
    rows = await conn.fetch(
        f"{_TI_SELECT} WHERE {clause} ORDER BY ti.task_id, ti.map_index"
        f" LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}",
        *args,
        limit,
        offset,
    )
    return schemas.TaskInstanceCollectionResponse(
        task_instances=[_task_instance(r) for r in rows], total_entries=total
    )


async def task_is_mapped(conn: asyncpg.Connection, dag_id: str, run_id: str, task_id: str) -> bool:
    """Whether the task has instances at map indexes (it was expanded in this run)."""
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM task_map WHERE dag_id = $1 AND run_id = $2"
            " AND task_id = $3) OR EXISTS (SELECT 1 FROM task_instances WHERE dag_id = $1"
            " AND run_id = $2 AND task_id = $3 AND map_index >= 0)",
            dag_id,
            run_id,
            task_id,
        )
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


# ----------------------------------------------------------------------------- XComs

_XCOM_SELECT = """
SELECT x.dag_id, x.run_id, x.task_id, x.map_index, x.key, x.timestamp, x.value,
       r.logical_date
FROM xcom x
JOIN dag_runs r ON r.dag_id = x.dag_id AND r.run_id = x.run_id
"""

ALL = "~"


def _xcom_fields(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "key": row["key"],
        "timestamp": row["timestamp"],
        "logical_date": row["logical_date"],
        "map_index": row["map_index"],
        "task_id": row["task_id"],
        "dag_id": row["dag_id"],
        "run_id": row["run_id"],
        "dag_display_name": row["dag_id"],
        "task_display_name": row["task_id"],
    }


async def list_xcom_entries(
    conn: asyncpg.Connection,
    dag_id: str,
    run_id: str,
    task_id: str,
    *,
    limit: int,
    offset: int,
    map_index: int | None = None,
    key: str | None = None,
) -> schemas.XComCollectionResponse:
    """XCom entries without values; ``~`` for the DAG, run or task means "any" (Airflow)."""
    where: list[str] = ["TRUE"]
    args: list[Any] = []
    for column, value in (
        ("x.dag_id", None if dag_id == ALL else dag_id),
        ("x.run_id", None if run_id == ALL else run_id),
        ("x.task_id", None if task_id == ALL else task_id),
        ("x.map_index", map_index),
        ("x.key", key),
    ):
        if value is not None:
            args.append(value)
            where.append(f"{column} = ${len(args)}")
    clause = " AND ".join(where)
    total = await conn.fetchval(f"SELECT count(*) FROM xcom x WHERE {clause}", *args)
    rows = await conn.fetch(
        f"{_XCOM_SELECT} WHERE {clause}"
        " ORDER BY x.dag_id, x.task_id, x.run_id, x.map_index, x.key"
        f" LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}",
        *args,
        limit,
        offset,
    )
    return schemas.XComCollectionResponse(
        xcom_entries=[schemas.XComResponse(**_xcom_fields(r)) for r in rows],
        total_entries=total,
    )


async def get_xcom_entry(
    conn: asyncpg.Connection, dag_id: str, run_id: str, task_id: str, key: str, map_index: int
) -> tuple[dict[str, Any], Any] | None:
    """``(fields, value)`` of one XCom entry, or None."""
    row = await conn.fetchrow(
        f"{_XCOM_SELECT} WHERE x.dag_id = $1 AND x.run_id = $2 AND x.task_id = $3"
        " AND x.key = $4 AND x.map_index = $5",
        dag_id,
        run_id,
        task_id,
        key,
        map_index,
    )
    if row is None:
        return None
    return _xcom_fields(row), row["value"]


# ----------------------------------------------------------------------------- DAG structure


async def latest_serialized_dag(conn: asyncpg.Connection, dag_id: str) -> SerializedDag | None:
    """The serialized DAG of the DAG's latest version."""
    data = await conn.fetchval(
        "SELECT v.serialized_dag FROM dags d JOIN dag_versions v"
        " ON v.version_id = d.latest_version_id WHERE d.dag_id = $1",
        dag_id,
    )
    return SerializedDag.model_validate(data) if data is not None else None


# ----------------------------------------------------------------------------- projector state


async def projector_offsets(conn: asyncpg.Connection) -> dict[tuple[str, int], int]:
    rows = await conn.fetch("SELECT topic, kafka_partition, next_offset FROM projector_offsets")
    return {(r["topic"], r["kafka_partition"]): r["next_offset"] for r in rows}


async def projector_status(conn: asyncpg.Connection) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT updated_at, events_applied, dead_lettered, last_event_time FROM projector_status"
    )
    return dict(row) if row is not None else None


# ----------------------------------------------------------------------------- run history
# A run's events: its commands and run-log facts carry the run id as correlation id and
# the DAG id as aggregate key (log chunks are keyed by attempt and are not history).
# Ordered by time, then by place in the log; the fold takes the run-log ones in log order.
_RUN_EVENTS = """
SELECT event_id, topic, kafka_partition, kafka_offset, aggregate_key, event_type, event_time,
       sequence, source, schema_version, correlation_id, causation_id, data
FROM events
WHERE aggregate_key = $1 AND correlation_id = $2 AND topic = ANY($3::text[])
ORDER BY event_time, topic, kafka_partition, kafka_offset
"""


async def run_events(
    conn: asyncpg.Connection, dag_id: str, run_id: str, *, topics: Sequence[str]
) -> list[asyncpg.Record]:
    """Every stored event of a run (commands and run-log facts), in history order."""
    return list(await conn.fetch(_RUN_EVENTS, dag_id, run_id, list(topics)))


async def dag_version(
    conn: asyncpg.Connection, version_id: str
) -> tuple[int, SerializedDag] | None:
    """``(version_number, serialized DAG)`` of a DAG version."""
    row = await conn.fetchrow(
        "SELECT version_number, serialized_dag FROM dag_versions WHERE version_id = $1",
        version_id,
    )
    if row is None:
        return None
    return row["version_number"], SerializedDag.model_validate(row["serialized_dag"])
