"""User interventions: clear task instances, mark them, mark a run (Airflow's clear and
"mark success/failed"). Commands in, facts out; a running attempt that is cleared or
marked is killed through a ``CancelTaskAttempt`` on the control topic.

Each command is applied once: the facts it causes carry its id as causation id and the
fold remembers it on the run (``Run.commands``), so a redelivered command does nothing.
"""

from __future__ import annotations

from ledgerflow.common.core.outbox import Outbox
from ledgerflow.common.core.selection import FAILED_STATES, clear_selection, related_tasks
from ledgerflow.common.core.state import FINISHED_TASK_STATES, Run, TIKey
from ledgerflow.common.core.topology import Topology, topology
from ledgerflow.common.events import (
    ClearTaskInstances,
    DagRunStateSet,
    Envelope,
    SetDagRunState,
    SetTaskInstanceState,
    TaskInstanceCleared,
    TaskInstanceStateSet,
)


def _states(run: Run, topo: Topology) -> dict[TIKey, str | None]:
    return {(t, i): run.ti(t, i).state for t in topo.tasks for i in run.map_indexes(t)}


def _topo(out: Outbox, run: Run) -> Topology | None:
    dag = out.catalog.get(run.version_id)
    return topology(dag) if dag is not None else None


def _reopen(out: Outbox, cmd: Envelope, run: Run, by: str | None) -> None:
    """A finished run is queued again (Airflow's ``dag_run_state=QUEUED``), so the
    instances changed in it are scheduled; it starts when ``max_active_runs`` allows."""
    if run.finished:
        out.emit(
            DagRunStateSet(
                dag_id=run.dag_id, run_id=run.run_id, state="queued", at=out.now, set_by=by
            ),
            key=("DagRunStateSet", run.dag_id, run.run_id, "queued", cmd.id),
            correlation_id=run.run_id,
        )


def _clear_one(
    out: Outbox, cmd: Envelope, run_id: str, key: TIKey, by: str | None, why: str
) -> None:
    run = out.state.runs[run_id]
    ti = run.ti(*key)
    if ti.state is None:
        return
    out.emit(
        TaskInstanceCleared(
            dag_id=run.dag_id,
            run_id=run_id,
            task_id=key[0],
            map_index=key[1],
            try_number=ti.try_number,
            at=out.now,
            cleared_by=by,
        ),
        key=("Cleared", run.dag_id, run_id, *key, ti.try_number, cmd.id),
        correlation_id=run_id,
    )
    out.cancel(run, ti, state="cleared", reason=why)
    out.mark_deps(run_id, key[0])


def clear(out: Outbox, cmd: Envelope, data: ClearTaskInstances) -> None:
    """Clear the selected instances of each run: back to no state, to run again with
    the next try number; running attempts are killed; finished runs are re-opened."""
    by = data.requested_by
    why = f"cleared by {by}" if by else "cleared"
    for run_id in data.run_ids:
        run = out.state.runs.get(run_id)
        if run is None or cmd.id in run.commands:
            continue
        topo = _topo(out, run)
        if topo is None:
            continue
        keys = clear_selection(
            topo,
            _states(run, topo),
            task_ids=data.task_ids,
            only_failed=data.only_failed,
            only_running=data.only_running,
            include_upstream=data.include_upstream,
            include_downstream=data.include_downstream,
        )
        keys = [k for k in keys if run.ti(*k).state is not None]
        if not keys:
            continue
        _reopen(out, cmd, run, by)
        for key in keys:
            _clear_one(out, cmd, run_id, key, by, why)


def _mark_one(
    out: Outbox, cmd: Envelope, run_id: str, key: TIKey, state: str, by: str | None
) -> bool:
    run = out.state.runs[run_id]
    ti = run.ti(*key)
    if ti.state == state:
        return False
    out.emit(
        TaskInstanceStateSet(
            dag_id=run.dag_id,
            run_id=run_id,
            task_id=key[0],
            map_index=key[1],
            try_number=ti.try_number,
            state=state,
            at=out.now,
            set_by=by,
        ),
        key=("StateSet", run.dag_id, run_id, *key, ti.try_number, cmd.id),
        correlation_id=run_id,
    )
    reason = f"marked {state}" + (f" by {by}" if by else "")
    out.cancel(run, ti, state=state, reason=reason)
    return True


def set_task_state(out: Outbox, cmd: Envelope, data: SetTaskInstanceState) -> None:
    """Mark the instance (and, as asked, its relatives and the same task in earlier or
    later runs). Marking success or skipped clears the failed and upstream_failed
    instances downstream, so the run resumes (Airflow's ``set_task_instance_state``)."""
    anchor = out.state.runs.get(data.run_id)
    if anchor is None:
        return
    runs = [anchor]
    for other in out.state.runs.values():
        if (data.include_future and other.order_key > anchor.order_key) or (
            data.include_past and other.order_key < anchor.order_key
        ):
            runs.append(other)
    runs.sort(key=lambda r: r.order_key)
    spec: list[str | tuple[str, int]] = (
        [data.task_id]
        if data.map_indexes is None
        else [(data.task_id, i) for i in data.map_indexes]
    )
    for run in runs:
        if cmd.id in run.commands:
            continue
        topo = _topo(out, run)
        if topo is None or data.task_id not in topo.tasks:
            continue
        wanted = related_tasks(
            topo,
            spec,
            include_upstream=data.include_upstream,
            include_downstream=data.include_downstream,
        )
        keys = [
            (t, i)
            for t in topo.sorted(wanted)
            for i in run.map_indexes(t)
            if wanted[t] is None or i in (wanted[t] or ())
        ]
        changing = [k for k in keys if run.ti(*k).state != data.new_state]
        if not changing:
            continue
        _reopen(out, cmd, run, data.requested_by)
        for key in changing:
            _mark_one(out, cmd, run.run_id, key, data.new_state, data.requested_by)
        if data.new_state in ("success", "skipped"):
            below: set[str] = set()
            for t in wanted:
                below |= topo.descendants(t)
            marked = set(keys)
            current = out.state.runs[run.run_id]
            for t in topo.sorted(below):
                for i in current.map_indexes(t):
                    if (t, i) not in marked and current.ti(t, i).state in FAILED_STATES:
                        why = "cleared after an upstream was marked"
                        _clear_one(out, cmd, run.run_id, (t, i), data.requested_by, why)
        for key in changing:
            out.mark_deps(run.run_id, key[0])
        for t in wanted:
            for down in topo.downstreams[t]:
                out.mark_deps(run.run_id, down)


def set_run_state(out: Outbox, cmd: Envelope, data: SetDagRunState) -> None:
    """Mark a run (Airflow's ``set_dag_run_state_to_*``): success marks every
    unfinished instance success; failed marks running ones failed and the rest
    skipped; queued re-opens the run. Running attempts are killed."""
    run = out.state.runs.get(data.run_id)
    if run is None or cmd.id in run.commands or run.state == data.state:
        return
    by = data.requested_by
    topo = _topo(out, run)
    if data.state != "queued" and topo is not None:
        for key, state in _states(run, topo).items():
            if data.state == "success":
                if state == "success":
                    continue
                new = "success"
            elif state in FINISHED_TASK_STATES:
                continue
            else:
                new = "failed" if state in ("queued", "running") else "skipped"
            _mark_one(out, cmd, run.run_id, key, new, by)
    out.emit(
        DagRunStateSet(
            dag_id=run.dag_id, run_id=run.run_id, state=data.state, at=out.now, set_by=by
        ),
        key=("DagRunStateSet", run.dag_id, run.run_id, data.state, cmd.id),
        correlation_id=run.run_id,
    )
