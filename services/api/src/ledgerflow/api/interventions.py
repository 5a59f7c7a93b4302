"""Clear and mark from the API: the commands it publishes and the dry runs it answers.

The scheduler decides what a clear or a mark does, from its own state; the API only
resolves which runs are meant and, for a dry run, applies the same selection rules
(``ledgerflow.common.core.selection``) to the projection, so what a dry run lists is
what the command touches (give or take what changes in between).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
from ledgerflow.api import queries, schemas
from ledgerflow.common import events as ev
from ledgerflow.common.core.selection import TaskSpec, clear_selection, related_tasks
from ledgerflow.common.core.topology import topology
from ledgerflow.common.dagmodel import SerializedDag

SOURCE = "ledgerflow/api"


def command(data: Any, *, dag_id: str, now: datetime, correlation_id: str | None) -> ev.Envelope:
    """A user command for the scheduler (each request its own command)."""
    return ev.make_envelope(
        data,
        id=str(uuid.uuid4()),
        source=SOURCE,
        time=now,
        aggregate_key=dag_id,
        correlation_id=correlation_id,
    )


async def run_dag(conn: asyncpg.Connection, dag_id: str, run_id: str) -> SerializedDag | None:
    """The serialized DAG of the version a run was queued with."""
    data = await conn.fetchval(
        "SELECT v.serialized_dag FROM dag_runs r JOIN dag_versions v"
        " ON v.version_id = r.version_id WHERE r.dag_id = $1 AND r.run_id = $2",
        dag_id,
        run_id,
    )
    return SerializedDag.model_validate(data) if data is not None else None


async def resolve_runs(
    conn: asyncpg.Connection,
    dag_id: str,
    *,
    dag_run_id: str | None,
    start_date: datetime | None = None,
    end_date: datetime | None = None,
    include_past: bool = False,
    include_future: bool = False,
) -> list[str]:
    """Run ids a clear is about: the run (and the runs before/after it by logical date,
    then queue time), or every run whose logical date (else queue time) is in
    ``[start_date, end_date]``."""
    order = "COALESCE(logical_date, queued_at)"
    if dag_run_id is not None:
        anchor = await conn.fetchval(
            f"SELECT {order} FROM dag_runs WHERE dag_id = $1 AND run_id = $2", dag_id, dag_run_id
        )
        if anchor is None:
            return []
        cond = ["run_id = $2"]
        if include_past:
            cond.append(f"{order} < $3")
        if include_future:
            cond.append(f"{order} > $3")
        args: list[Any] = [dag_id, dag_run_id] + ([anchor] if len(cond) > 1 else [])
        rows = await conn.fetch(
            f"SELECT run_id FROM dag_runs WHERE dag_id = $1 AND ({' OR '.join(cond)})"
            f" ORDER BY {order}, run_id",
            *args,
        )
        return [r["run_id"] for r in rows]
    rows = await conn.fetch(
        f"SELECT run_id FROM dag_runs WHERE dag_id = $1"
        f" AND ($2::timestamptz IS NULL OR {order} >= $2)"
        f" AND ($3::timestamptz IS NULL OR {order} <= $3) ORDER BY {order}, run_id",
        dag_id,
        start_date,
        end_date,
    )
    return [r["run_id"] for r in rows]


async def _instances(
    conn: asyncpg.Connection, dag_id: str, run_id: str
) -> dict[tuple[str, int], schemas.TaskInstanceResponse]:
    found = await queries.list_task_instances(conn, dag_id, run_id, limit=100_000, offset=0)
    return {(ti.task_id, ti.map_index): ti for ti in found.task_instances}


async def clear_dry_run(
    conn: asyncpg.Connection,
    dag_id: str,
    run_ids: Sequence[str],
    *,
    task_ids: Sequence[TaskSpec] | None,
    only_failed: bool,
    only_running: bool,
    include_upstream: bool,
    include_downstream: bool,
) -> list[schemas.TaskInstanceResponse]:
    """The task instances a clear would touch, run by run."""
    out: list[schemas.TaskInstanceResponse] = []
    for run_id in run_ids:
        dag = await run_dag(conn, dag_id, run_id)
        if dag is None:
            continue
        tis = await _instances(conn, dag_id, run_id)
        keys = clear_selection(
            topology(dag),
            {k: ti.state for k, ti in tis.items()},
            task_ids=task_ids,
            only_failed=only_failed,
            only_running=only_running,
            include_upstream=include_upstream,
            include_downstream=include_downstream,
        )
        out += [tis[k] for k in keys if tis[k].state is not None]
    return out


async def mark_dry_run(
    conn: asyncpg.Connection,
    dag_id: str,
    run_ids: Sequence[str],
    task_id: str,
    map_indexes: Sequence[int] | None,
    new_state: str,
    *,
    include_upstream: bool,
    include_downstream: bool,
) -> list[schemas.TaskInstanceResponse]:
    """The task instances a mark would change (those not already in ``new_state``)."""
    spec: list[TaskSpec] = [task_id] if map_indexes is None else [(task_id, i) for i in map_indexes]
    out: list[schemas.TaskInstanceResponse] = []
    for run_id in run_ids:
        dag = await run_dag(conn, dag_id, run_id)
        if dag is None:
            continue
        topo = topology(dag)
        if task_id not in topo.tasks:
            continue
        wanted = related_tasks(
            topo, spec, include_upstream=include_upstream, include_downstream=include_downstream
        )
        tis = await _instances(conn, dag_id, run_id)
        for (t, i), ti in sorted(
            tis.items(), key=lambda kv: (topo.order.get(kv[0][0], -1), kv[0][1])
        ):
            indexes = wanted.get(t, ()) if t in wanted else ()
            if t in wanted and (indexes is None or i in indexes) and ti.state != new_state:
                out.append(ti)
    return out


def with_state(
    tis: Sequence[schemas.TaskInstanceResponse], state: str | None
) -> list[schemas.TaskInstanceResponse]:
    """The instances as the command leaves them (the projection catches up shortly)."""
    return [ti.model_copy(update={"state": state}) for ti in tis]
