"""Work items: what an executor needs to run one attempt (ADR 0006's request).

A work item carries every XCom of the task's ancestors (all keys, all map indexes), so a
task never waits on a database; its id depends only on the attempt, so a work item
re-sent after a crash is recognisably the same one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from ledgerflow.common.core.evolve import SCHEDULER_SOURCE
from ledgerflow.common.core.state import XCOM_RETURN_KEY, DagState, Run
from ledgerflow.common.core.topology import Topology, topology
from ledgerflow.common.dagmodel import SerializedDag
from ledgerflow.common.events import (
    Envelope,
    RunTaskAttempt,
    XComEntry,
    deterministic_id,
    make_envelope,
)


class Catalog(Protocol):
    """Read-only access to DAG versions (serialized structure only)."""

    def get(self, version_id: str) -> SerializedDag | None: ...

    def latest_version_id(self, dag_id: str) -> str | None: ...


def ancestor_xcoms(run: Run, topo: Topology, task_id: str) -> tuple[XComEntry, ...]:
    """Every XCom pushed by the ancestors of ``task_id`` in ``run``: ancestors in
    declaration order, then map index, then ``return_value`` first and other keys
    sorted."""
    entries: list[XComEntry] = []
    for up in topo.ancestors(task_id):
        for i in run.map_indexes(up):
            ti = run.tasks.get((up, i))
            if ti is None or ti.state != "success":
                continue
            if ti.return_value is not None:
                entries.append(XComEntry(task_id=up, map_index=i, value=ti.return_value))
            for key in sorted(ti.xcoms):
                if key == XCOM_RETURN_KEY and ti.return_value is not None:
                    continue
                entries.append(XComEntry(task_id=up, map_index=i, key=key, value=ti.xcoms[key]))
    return tuple(entries)


def _max_tries(run: Run, task_id: str, map_index: int, retries: int) -> int:
    """The protocol's ``max_tries``: an attempt is retried on failure while
    ``try_number < max_tries``, the same rule as the core's (``TaskInstance.attempts``
    up to ``retries``), so the runner picks the callback the scheduler's verdict matches
    (``on_retry_callback`` after a clear, not ``on_failure_callback``)."""
    ti = run.ti(task_id, map_index)
    return retries + 1 + ti.reschedules + ti.retry_base


def work_item(
    run: Run,
    dag: SerializedDag,
    task_id: str,
    map_index: int,
    try_number: int,
    *,
    now: datetime,
    causation_id: str | None,
    xcoms: tuple[XComEntry, ...] | None = None,
) -> Envelope:
    """The work item for one attempt (``xcoms`` may be passed in when the caller has
    them already: every instance of a mapped task has the same ancestors)."""
    topo = topology(dag)
    task = topo.tasks[task_id]
    if xcoms is None:
        xcoms = ancestor_xcoms(run, topo, task_id)
    attempt = (run.dag_id, run.run_id, task_id, map_index, try_number)
    # Deprecated field for schema-1 readers: return values of unmapped ancestors.
    upstream_xcoms: dict[str, Any] = {
        x.task_id: x.value for x in xcoms if x.map_index < 0 and x.key == XCOM_RETURN_KEY
    }
    return make_envelope(
        RunTaskAttempt(
            dag_id=run.dag_id,
            run_id=run.run_id,
            task_id=task_id,
            map_index=map_index,
            try_number=try_number,
            version_id=run.version_id,
            queue=task.queue,
            conf=dict(run.conf),
            logical_date=run.logical_date,
            execution_timeout_seconds=task.execution_timeout_seconds,
            upstream_xcoms=upstream_xcoms,
            xcoms=xcoms,
            run_type=run.run_type,
            # Issue 6 brings real data intervals; until then both ends are the
            # logical date, as Airflow has it for manual runs.
            data_interval_start=run.logical_date,
            data_interval_end=run.logical_date,
            map_length=run.map_lengths.get(task_id) if task.mapped is not None else None,
            max_tries=_max_tries(run, task_id, map_index, task.retries),
        ),
        id=deterministic_id("RunTaskAttempt", *attempt),
        source=SCHEDULER_SOURCE,
        time=now,
        aggregate_key=run.dag_id,
        correlation_id=run.run_id,
        causation_id=causation_id,
    )


def queued_work(state: DagState, *, now: datetime, catalog: Catalog) -> tuple[Envelope, ...]:
    """Work items of every attempt the log says is queued but not yet started.

    After a crash the scheduler cannot know whether it sent these before dying; it checks
    the work topic for each id and re-sends only what is missing (docs/adr/0003).
    """
    items: list[Envelope] = []
    for run_id in sorted(state.active):
        run = state.runs[run_id]
        dag = catalog.get(run.version_id)
        if dag is None:
            continue
        topo = topology(dag)
        cache: dict[str, tuple[XComEntry, ...]] = {}
        queued = [ti for ti in run.tasks.values() if ti.state == "queued"]
        queued.sort(key=lambda ti: (topo.order.get(ti.task_id, -1), ti.map_index))
        for ti in queued:
            if ti.task_id not in topo.tasks:
                continue
            if ti.task_id not in cache:
                cache[ti.task_id] = ancestor_xcoms(run, topo, ti.task_id)
            items.append(
                work_item(
                    run,
                    dag,
                    ti.task_id,
                    ti.map_index,
                    ti.try_number,
                    now=ti.queued_when or now,
                    causation_id=None,
                    xcoms=cache[ti.task_id],
                )
            )
    return tuple(items)
