"""``decide(state, inbound, now=...) -> Decision``: what follows from a DAG's state.

Pure: time comes in as ``now``, ids are derived from the facts (so deciding the same
thing twice gives byte-identical events), DAG structure comes in as data (a
:class:`Catalog` of serialized versions; user code is never imported here).

``decide`` is level-triggered: after folding the inbound event it looks at every
unfinished run of the DAG and emits whatever is due. Calling it again on the resulting
state emits nothing, which is what makes crash recovery a plain "replay, then decide".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from ledgerflow.common.core.evolve import SCHEDULER_SOURCE, evolve
from ledgerflow.common.core.state import DagState, Run, TaskInstance
from ledgerflow.common.dagmodel import SerializedDag
from ledgerflow.common.events import (
    DagPauseChanged,
    DagRunFailed,
    DagRunQueued,
    DagRunStarted,
    DagRunSucceeded,
    Envelope,
    RunTaskAttempt,
    SetDagPaused,
    TaskInstanceFailed,
    TaskInstanceQueued,
    TaskInstanceSkipped,
    TaskInstanceUpForRetry,
    TaskInstanceUpstreamFailed,
    TriggerDagRun,
    TriggerRejected,
    deterministic_id,
    make_envelope,
)
from pydantic import BaseModel


class Catalog(Protocol):
    """Read-only access to DAG versions (serialized structure only)."""

    def get(self, version_id: str) -> SerializedDag | None: ...

    def latest_version_id(self, dag_id: str) -> str | None: ...


@dataclass(frozen=True)
class Tick:
    """A timer fired (e.g. a retry became due), or recovery asks what is due now."""

    dag_id: str


@dataclass(frozen=True)
class Decision:
    """What the scheduler must write, and the state once it has.

    ``events`` go to the run log (in order); ``work`` items go to their queue's topic,
    each after the ``TaskInstanceQueued`` event that announces it. ``wake_at`` is the
    earliest time a :class:`Tick` is needed (a retry coming due), if any.
    """

    state: DagState
    events: tuple[Envelope, ...] = ()
    work: tuple[Envelope, ...] = ()
    wake_at: datetime | None = None


def decide(
    state: DagState, inbound: Envelope | Tick, *, now: datetime, catalog: Catalog
) -> Decision:
    """Fold ``inbound`` (a command, a run-log event or a tick) and decide what follows."""
    out = _Out(state=state, now=now, cause=inbound if isinstance(inbound, Envelope) else None)
    if isinstance(inbound, Envelope):
        data = inbound.data
        if isinstance(data, TriggerDagRun):
            _on_trigger(out, inbound, data, catalog)
        elif isinstance(data, SetDagPaused):
            if _is_paused(out.state, catalog) != data.is_paused:
                out.emit(
                    DagPauseChanged(
                        dag_id=data.dag_id, is_paused=data.is_paused, changed_by=data.requested_by
                    ),
                    key=("DagPauseChanged", data.dag_id, inbound.id),
                    correlation_id=None,
                )
        else:
            out.state = evolve(out.state, inbound)
    for run_id in sorted(out.state.runs):
        run = out.state.runs[run_id]
        if not run.finished:
            _advance_run(out, run_id, catalog)
    return Decision(
        state=out.state, events=tuple(out.events), work=tuple(out.work), wake_at=out.wake_at
    )


# --------------------------------------------------------------------------- internals
@dataclass
class _Out:
    """Accumulates emitted events, folding each into the state as it goes."""

    state: DagState
    now: datetime
    cause: Envelope | None
    events: list[Envelope] = field(default_factory=list)
    work: list[Envelope] = field(default_factory=list)
    wake_at: datetime | None = None

    def emit(
        self, data: BaseModel, *, key: tuple[object, ...], correlation_id: str | None
    ) -> Envelope:
        env = make_envelope(
            data,
            id=deterministic_id(*key),
            source=SCHEDULER_SOURCE,
            time=self.now,
            aggregate_key=self.state.dag_id,
            sequence=self.state.sequence + 1,
            correlation_id=correlation_id,
            causation_id=self.cause.id if self.cause else None,
        )
        self.events.append(env)
        self.state = evolve(self.state, env)
        return env

    def wake(self, at: datetime) -> None:
        if self.wake_at is None or at < self.wake_at:
            self.wake_at = at


def _is_paused(state: DagState, catalog: Catalog) -> bool:
    if state.is_paused is not None:
        return state.is_paused
    latest = catalog.latest_version_id(state.dag_id)
    dag = catalog.get(latest) if latest else None
    return bool(dag and dag.is_paused_upon_creation)


def _on_trigger(out: _Out, cmd: Envelope, data: TriggerDagRun, catalog: Catalog) -> None:
    existing = out.state.runs.get(data.run_id)
    if existing is not None and existing.command_id == cmd.id:
        return  # the same command, redelivered: already done
    reason: str | None = None
    version_id = catalog.latest_version_id(data.dag_id)
    if existing is not None:
        reason = f"a run with run_id {data.run_id!r} already exists"
    elif version_id is None or catalog.get(version_id) is None:
        reason = f"DAG {data.dag_id!r} is not known to the scheduler"
    if reason is not None or version_id is None:
        out.emit(
            TriggerRejected(
                dag_id=data.dag_id, run_id=data.run_id, reason=reason or "", command_id=cmd.id
            ),
            key=("TriggerRejected", cmd.id),
            correlation_id=data.run_id,
        )
        return
    out.emit(
        DagRunQueued(
            dag_id=data.dag_id,
            run_id=data.run_id,
            version_id=version_id,
            run_type=data.run_type,
            conf=data.conf,
            logical_date=data.logical_date,
            queued_at=cmd.time,
            triggered_by=data.triggered_by,
            note=data.note,
        ),
        key=("DagRunQueued", data.dag_id, data.run_id),
        correlation_id=data.run_id,
    )


def _advance_run(out: _Out, run_id: str, catalog: Catalog) -> None:
    run = out.state.runs[run_id]
    dag = catalog.get(run.version_id)
    if dag is None:
        # The run's version must exist (it was published before the run was queued);
        # until the catalog has caught up there is nothing to decide.
        return
    ids = (run.dag_id, run.run_id)
    if run.state == "queued":
        if _is_paused(out.state, catalog) or _active_runs(out.state) >= dag.max_active_runs:
            return
        out.emit(
            DagRunStarted(dag_id=run.dag_id, run_id=run.run_id, start_date=out.now),
            key=("DagRunStarted", *ids),
            correlation_id=run.run_id,
        )
    # Keep deciding until nothing changes: one finished task can unblock several.
    progressed = True
    while progressed:
        progressed = False
        run = out.state.runs[run_id]
        for task in dag.tasks:
            ti = run.tasks.get(task.task_id) or TaskInstance(task_id=task.task_id)
            if _advance_task(out, run, dag, ti):
                progressed = True
                run = out.state.runs[run_id]
    _maybe_finish(out, out.state.runs[run_id], dag)


def _advance_task(out: _Out, run: Run, dag: SerializedDag, ti: TaskInstance) -> bool:
    """Emit what is due for one task instance. Returns True if something was emitted."""
    task = dag.task(ti.task_id)
    ref = {
        "dag_id": run.dag_id,
        "run_id": run.run_id,
        "task_id": ti.task_id,
        "map_index": ti.map_index,
    }
    ids = (run.dag_id, run.run_id, ti.task_id, ti.map_index)
    if ti.state is None:
        ups = [run.tasks.get(u) for u in task.upstream_task_ids]
        up_states = [u.state if u else None for u in ups]
        # Trigger rule all_success (the only rule so far), as Airflow evaluates it:
        # any failed/upstream_failed upstream fails this one at once; a skipped one skips it.
        if any(s in ("failed", "upstream_failed") for s in up_states):
            out.emit(
                TaskInstanceUpstreamFailed(**ref, at=out.now),
                key=("UpstreamFailed", *ids),
                correlation_id=run.run_id,
            )
            return True
        if any(s == "skipped" for s in up_states):
            out.emit(
                TaskInstanceSkipped(**ref, at=out.now, reason="an upstream task was skipped"),
                key=("Skipped", *ids),
                correlation_id=run.run_id,
            )
            return True
        if all(s == "success" for s in up_states):
            _queue(out, run, dag, ti)
            return True
        return False
    if ti.state == "attempt_failed":
        if ti.retryable and ti.try_number <= task.retries:
            delay = timedelta(seconds=task.retry_delay_seconds)
            out.emit(
                TaskInstanceUpForRetry(**ref, try_number=ti.try_number, retry_at=out.now + delay),
                key=("UpForRetry", *ids, ti.try_number),
                correlation_id=run.run_id,
            )
        else:
            out.emit(
                TaskInstanceFailed(
                    **ref, try_number=ti.try_number, end_date=ti.end_date or out.now
                ),
                key=("TaskFailed", *ids, ti.try_number),
                correlation_id=run.run_id,
            )
        return True
    if ti.state == "up_for_retry" and ti.retry_at is not None:
        if ti.retry_at <= out.now:
            _queue(out, run, dag, ti)
            return True
        out.wake(ti.retry_at)
    return False


def _queue(out: _Out, run: Run, dag: SerializedDag, ti: TaskInstance) -> None:
    task = dag.task(ti.task_id)
    try_number = ti.try_number + 1
    attempt = (run.dag_id, run.run_id, ti.task_id, ti.map_index, try_number)
    queued = out.emit(
        TaskInstanceQueued(
            dag_id=run.dag_id,
            run_id=run.run_id,
            task_id=ti.task_id,
            map_index=ti.map_index,
            try_number=try_number,
            queue=task.queue,
            pool=task.pool,
            priority_weight=task.priority_weight,
            queued_when=out.now,
        ),
        key=("TaskInstanceQueued", *attempt),
        correlation_id=run.run_id,
    )
    out.work.append(
        work_item(
            run, dag, ti.task_id, ti.map_index, try_number, now=out.now, causation_id=queued.id
        )
    )


def work_item(
    run: Run,
    dag: SerializedDag,
    task_id: str,
    map_index: int,
    try_number: int,
    *,
    now: datetime,
    causation_id: str | None,
) -> Envelope:
    """The work item for one attempt. Its id depends only on the attempt, so a work item
    re-sent after a crash is recognisably the same one."""
    task = dag.task(task_id)
    attempt = (run.dag_id, run.run_id, task_id, map_index, try_number)
    # Airflow lets a task pull the XCom of any task of its run, not only its upstreams.
    upstream_xcoms = {
        t.task_id: t.return_value
        for t in run.tasks.values()
        if t.state == "success" and t.return_value is not None
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
    for run in state.runs.values():
        dag = catalog.get(run.version_id)
        if run.finished or dag is None:
            continue
        for ti in run.tasks.values():
            if ti.state == "queued":
                items.append(
                    work_item(
                        run,
                        dag,
                        ti.task_id,
                        ti.map_index,
                        ti.try_number,
                        now=ti.queued_when or now,
                        causation_id=None,
                    )
                )
    return tuple(items)


def _maybe_finish(out: _Out, run: Run, dag: SerializedDag) -> None:
    if run.state != "running":
        return
    tis: Mapping[str, TaskInstance] = run.tasks
    if not all(t.task_id in tis and tis[t.task_id].finished for t in dag.tasks):
        return
    downstream_of: set[str] = {u for t in dag.tasks for u in t.upstream_task_ids}
    leaves = [t.task_id for t in dag.tasks if t.task_id not in downstream_of]
    failed = [tid for tid in leaves if tis[tid].state in ("failed", "upstream_failed")]
    ids = (run.dag_id, run.run_id)
    if failed:
        out.emit(
            DagRunFailed(
                dag_id=run.dag_id,
                run_id=run.run_id,
                end_date=out.now,
                reason=f"failed or upstream_failed: {', '.join(sorted(failed))}",
            ),
            key=("DagRunFinished", *ids),
            correlation_id=run.run_id,
        )
    else:
        out.emit(
            DagRunSucceeded(dag_id=run.dag_id, run_id=run.run_id, end_date=out.now),
            key=("DagRunFinished", *ids),
            correlation_id=run.run_id,
        )


def _active_runs(state: DagState) -> int:
    return sum(1 for r in state.runs.values() if r.state == "running")
