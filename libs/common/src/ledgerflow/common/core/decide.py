"""``decide(state, inbound, now=...) -> Decision``: what follows from a DAG's state.

Pure: time comes in as ``now``, ids are derived from the facts (so deciding the same
thing twice gives byte-identical events), DAG structure comes in as data (a
:class:`Catalog` of serialized versions; user code is never imported here).

``decide`` folds the inbound event and then looks only at what that event can have
changed (the dirty set kept by :class:`~ledgerflow.common.core.outbox.Outbox`): the
instance it is about, the downstreams of a task instance that finished, a run that
started. A :class:`Tick` with ``full=True`` looks at every unfinished run from scratch;
that is what recovery does after a replay ("replay, then decide"), and it emits exactly
what is due, with the ids the crashed scheduler would have used. Deciding again on the
resulting state emits nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ledgerflow.common.core.backfill import (
    BACKFILL_COMMANDS,
    advance_backfills,
    on_backfill_command,
)
from ledgerflow.common.core.interventions import clear, set_run_state, set_task_state
from ledgerflow.common.core.messages import on_message, queue_pending
from ledgerflow.common.core.outbox import Outbox, pop_first
from ledgerflow.common.core.schedule import is_paused, plan, schedule_wake
from ledgerflow.common.core.state import DagState, Run
from ledgerflow.common.core.steps import evaluate_task, own_step, sensor_timeout
from ledgerflow.common.core.topology import Topology, topology
from ledgerflow.common.core.work import Catalog
from ledgerflow.common.events import (
    ClearTaskInstances,
    DagPauseChanged,
    DagRunFailed,
    DagRunQueued,
    DagRunStarted,
    DagRunSucceeded,
    Envelope,
    ExternalMessageReceived,
    SetDagPaused,
    SetDagRunState,
    SetTaskInstanceState,
    TriggerDagRun,
    TriggerRejected,
)

DEFAULT_ZOMBIE_TIMEOUT = timedelta(seconds=30)


@dataclass(frozen=True)
class Tick:
    """Time passed, or recovery asks what is due now.

    ``full=True`` (recovery, tests) looks at every unfinished run from scratch.
    ``full=False`` (the live scheduler's timer) looks only at the instances waiting on a
    timer (retries, reschedules, sensor timeouts) and the running attempts past the
    zombie timeout: everything else was decided when the event that changed it arrived.
    Both also create the scheduled runs that are due and time out overdue runs
    (:mod:`~ledgerflow.common.core.schedule`).
    """

    dag_id: str
    full: bool = True


@dataclass(frozen=True)
class Decision:
    """What the scheduler must write, and the state once it has.

    ``events`` go to the run log (in order); ``work`` items go to their queue's topic,
    each after the ``TaskInstanceQueued`` event that announces it; ``control`` messages
    (``CancelTaskAttempt``) go to the control topic once ``events`` are acknowledged.
    ``wake_at`` is the earliest time a :class:`Tick` is needed (a retry or reschedule
    coming due, a sensor timing out, a running attempt reaching the zombie timeout).
    """

    state: DagState
    events: tuple[Envelope, ...] = ()
    work: tuple[Envelope, ...] = ()
    wake_at: datetime | None = None
    control: tuple[Envelope, ...] = ()


def decide(
    state: DagState,
    inbound: Envelope | Tick,
    *,
    now: datetime,
    catalog: Catalog,
    zombie_timeout: timedelta = DEFAULT_ZOMBIE_TIMEOUT,
    pools: bool = False,
) -> Decision:
    """Fold ``inbound`` (a command, a run-log event or a tick) and decide what follows.

    ``zombie_timeout``: a running attempt not heard of (heartbeat or start) for this
    long is failed as a zombie (the scheduler's ``LEDGERFLOW_ZOMBIE_TIMEOUT_SECONDS``).
    ``pools``: instances wait in ``scheduled`` for the pool arbiter's grant before they
    are queued (ADR 0011); off, they are queued at once (no pool or concurrency limits).
    """
    out = Outbox(
        state=state,
        now=now,
        catalog=catalog,
        cause=inbound if isinstance(inbound, Envelope) else None,
        zombie_timeout=zombie_timeout,
        pools=pools,
    )
    if isinstance(inbound, Tick):
        _on_tick(out, inbound)
    elif isinstance(inbound.data, ClearTaskInstances):
        clear(out, inbound, inbound.data)
    elif isinstance(inbound.data, SetTaskInstanceState):
        set_task_state(out, inbound, inbound.data)
    elif isinstance(inbound.data, SetDagRunState):
        set_run_state(out, inbound, inbound.data)
    elif isinstance(inbound.data, TriggerDagRun):
        _on_trigger(out, inbound, inbound.data)
    elif isinstance(inbound.data, ExternalMessageReceived):
        on_message(out, inbound)  # a Kafka message matched a watcher (ADR 0014)
    elif isinstance(inbound.data, BACKFILL_COMMANDS):
        on_backfill_command(out, inbound)
    elif isinstance(inbound.data, SetDagPaused):
        data = inbound.data
        if _is_paused(out.state, catalog) != data.is_paused:
            out.emit(
                DagPauseChanged(
                    dag_id=data.dag_id, is_paused=data.is_paused, changed_by=data.requested_by
                ),
                key=("DagPauseChanged", data.dag_id, inbound.id),
                correlation_id=None,
            )
    else:
        out.apply(inbound)
    _settle(out)
    return Decision(
        state=out.state,
        events=tuple(out.events),
        work=tuple(out.work),
        wake_at=next_wake(out.state, catalog, zombie_timeout=zombie_timeout, now=now),
        control=tuple(out.control),
    )


# --------------------------------------------------------------------------- inbound
def _on_tick(out: Outbox, tick: Tick) -> None:
    out.start = True  # also: scheduled runs and run timeouts (core/schedule.py)
    if tick.full:
        queue_pending(out)  # recorded messages whose run was not written (ADR 0014)
        for run_id in sorted(out.state.active):
            out.mark_full(run_id)
        return
    for run_id in sorted(out.state.active):
        run = out.state.runs[run_id]
        for key in sorted(run.timers):
            out.mark_own(run_id, key)
        for key, seen in sorted(run.beats.items()):
            if out.now - seen >= out.zombie_timeout:
                out.mark_own(run_id, key)


def _is_paused(state: DagState, catalog: Catalog) -> bool:
    return is_paused(state, catalog)


def _on_trigger(out: Outbox, cmd: Envelope, data: TriggerDagRun) -> None:
    existing = out.state.runs.get(data.run_id)
    if existing is not None and existing.command_id == cmd.id:
        return  # the same command, redelivered: already done
    reason: str | None = None
    version_id = out.catalog.latest_version_id(data.dag_id)
    if existing is not None:
        reason = f"a run with run_id {data.run_id!r} already exists"
    elif version_id is None or out.catalog.get(version_id) is None:
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
            triggering_asset_events=data.triggering_asset_events,
        ),
        key=("DagRunQueued", data.dag_id, data.run_id),
        correlation_id=data.run_id,
    )


# --------------------------------------------------------------------------- the loop
def _settle(out: Outbox) -> None:
    """Work through the dirty set until nothing more follows."""
    while True:
        if out.start:
            out.start = False
            plan(out)  # scheduled runs, run timeouts, auto-pause
            _start_runs(out)
        run_id = out.busy_run()
        if run_id is not None:
            _work_on(out, run_id)
            continue
        if out.finish:
            _maybe_finish(out, pop_first(out.finish))
            continue
        if not out.start:
            return


def _work_on(out: Outbox, run_id: str) -> None:
    """Drain one run's dirty set: own states first (so a branch skips what it does not
    follow before anyone evaluates those tasks' trigger rules), then the downstreams of
    what finished, then trigger rules."""
    own = out.own.setdefault(run_id, {})
    finished = out.finished.setdefault(run_id, {})
    deps = out.deps.setdefault(run_id, {})
    run = out.state.runs.get(run_id)
    dag = out.catalog.get(run.version_id) if run is not None else None
    if run is None or dag is None or run.state != "running":
        # Nothing to decide for a run that is queued or done, or whose DAG version the
        # catalog does not have yet (a later full tick decides it).
        out.full.pop(run_id, None)
        own.clear()
        finished.clear()
        deps.clear()
        return
    topo = topology(dag)
    if run_id in out.full:
        del out.full[run_id]
        for key in sorted(run.tasks, key=lambda k: (topo.order.get(k[0], -1), k[1])):
            own[key] = None
        for task_id in topo.order:
            deps[task_id] = None
    while own or finished or deps:
        if own:
            key = pop_first(own)
            ti = out.state.runs[run_id].tasks.get(key)
            if ti is not None:
                own_step(out, run_id, topo, ti)
        elif finished:
            _touch_downstream(out, run_id, topo, pop_first(finished))
        else:
            task_id = pop_first(deps)
            if task_id in topo.tasks:
                evaluate_task(out, run_id, topo, task_id)


def _touch_downstream(out: Outbox, run_id: str, topo: Topology, task_id: str) -> None:
    if task_id not in topo.tasks:
        return
    for down in topo.downstreams[task_id]:
        out.mark_deps(run_id, down)
    for dependent in topo.setup_dependents(task_id):
        out.mark_deps(run_id, dependent)
    if len(out.state.active) > 1:
        # Later runs' depends_on_past tasks (in their own DAG versions) may be waiting
        # for this run. Queued runs are looked at in full when they start.
        key = out.state.runs[run_id].order_key
        for other_id in sorted(out.state.active):
            other = out.state.runs[other_id]
            if other.state != "running" or other.order_key <= key:
                continue
            other_dag = out.catalog.get(other.version_id)
            for t in topology(other_dag).past_dependent if other_dag is not None else ():
                out.mark_deps(other_id, t)


# --------------------------------------------------------------------------- runs
def _order(run: Run) -> tuple[datetime, datetime, str]:
    return run.order_key


def _start_runs(out: Outbox) -> None:
    """Start queued runs, oldest first, while the DAG is unpaused and below
    ``max_active_runs``. Backfill runs are started by their backfill, within its own
    ``max_active_runs`` (and while the DAG is paused), as in Airflow 3."""
    advance_backfills(out)
    if _is_paused(out.state, out.catalog):
        return
    active = [
        out.state.runs[r] for r in out.state.active if out.state.runs[r].run_type != "backfill"
    ]
    running = sum(1 for r in active if r.state == "running")
    for run in sorted((r for r in active if r.state == "queued"), key=_order):
        dag = out.catalog.get(run.version_id)
        if dag is None or running >= dag.max_active_runs:
            continue
        out.emit(
            DagRunStarted(dag_id=run.dag_id, run_id=run.run_id, start_date=out.now),
            key=("DagRunStarted", run.dag_id, run.run_id),
            correlation_id=run.run_id,
        )
        running += 1


def _maybe_finish(out: Outbox, run_id: str) -> None:
    """Airflow's ``DagRun.update_state``: once every instance is done the run failed if an
    effective leaf (teardowns aside) failed or is upstream_failed, else succeeded."""
    run = out.state.runs.get(run_id)
    if run is None or run.state != "running":
        return
    dag = out.catalog.get(run.version_id)
    if dag is None:
        return
    expected = len(dag.tasks) + sum(n - 1 for n in run.map_lengths.values() if n > 0)
    if run.finished_instances < expected:
        return
    topo = topology(dag)
    failed = [
        t for t in topo.leaves if (c := run.counts.get(t)) and c.failed + c.upstream_failed > 0
    ]
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


def next_wake(
    state: DagState,
    catalog: Catalog,
    *,
    zombie_timeout: timedelta = DEFAULT_ZOMBIE_TIMEOUT,
    now: datetime | None = None,
) -> datetime | None:
    """The earliest timer of any unfinished run: a retry or reschedule coming due, a
    reschedule-mode sensor's timeout, or the zombie deadline of a running attempt; a
    run's ``dagrun_timeout``; and (given ``now``) the next scheduled run's
    ``run_after``."""
    wake: datetime | None = schedule_wake(state, catalog, now)
    for run_id in state.active:
        run = state.runs[run_id]
        if run.beats:
            deadline = min(run.beats.values()) + zombie_timeout
            if wake is None or deadline < wake:
                wake = deadline
        if not run.timers:
            continue
        dag = catalog.get(run.version_id)
        tasks = topology(dag).tasks if dag is not None else {}
        for key in run.timers:
            ti = run.tasks[key]
            at = ti.retry_at if ti.state == "up_for_retry" else ti.reschedule_at
            task = tasks.get(ti.task_id)
            timeout = sensor_timeout(task) if task is not None else None
            if ti.state == "up_for_reschedule" and timeout is not None and ti.first_poke_at:
                deadline = ti.first_poke_at + timeout
                at = deadline if at is None or deadline < at else at
            if at is not None and (wake is None or at < wake):
                wake = at
    return wake
