"""Scheduled runs, run timeouts and auto-pause: the time-driven part of ``decide``.

Called from ``decide``'s settle loop only when something that can change the schedule
happened (a tick, a run queued or finished, a pause change), never for a task event.

- **Scheduled runs.** For a DAG whose latest version has a time-based timetable and
  that is not paused, every run the timetable has due at ``now`` is created as
  ``DagRunQueued(run_type="scheduled")``, with Airflow's run id
  ``scheduled__<logical date>`` and an event id derived from it: two instances, or a
  restarted one, deciding the same interval write the same event, and the fold keeps
  the first. The schedule continues from the latest scheduled run in the log
  (``DagState.last_scheduled``), so it is recovered by replay like everything else.
  catchup=True creates every missed interval, catchup=False only the latest due; in
  both cases no more than ``max_active_runs`` runs (backfills aside) are active, as in
  Airflow 3. ``@continuous`` creates a run whenever no run is active.
- **dagrun_timeout.** A running run older than its DAG's ``dagrun_timeout`` fails; its
  unfinished instances are marked skipped (as Airflow does) and running attempts are
  cancelled.
- **max_consecutive_failed_dag_runs.** When a run fails and the last N runs (in the
  order they were created) all failed, the DAG is paused.

``schedule_wake`` gives ``decide`` the next time any of this is due.
"""

from __future__ import annotations

import heapq
from datetime import datetime, timedelta

from ledgerflow.common.core.outbox import Outbox
from ledgerflow.common.core.state import FINISHED_TASK_STATES, DagState, Run, ScheduledInterval
from ledgerflow.common.core.timetables import (
    DagRunInfo,
    DataInterval,
    continuous_dagrun_info,
    next_dagrun_info,
    restriction_for,
    run_id_for,
    time_part,
)
from ledgerflow.common.core.topology import topology
from ledgerflow.common.core.work import Catalog
from ledgerflow.common.dagmodel import SerializedDag
from ledgerflow.common.events import (
    DagPauseChanged,
    DagRunFailed,
    DagRunQueued,
    TaskInstanceStateSet,
)

TIMEOUT_BY = "scheduler: dagrun_timeout"


def is_paused(state: DagState, catalog: Catalog) -> bool:
    """The DAG's pause flag: the last ``DagPauseChanged``, else its latest version's
    ``is_paused_upon_creation``."""
    if state.is_paused is not None:
        return state.is_paused
    dag = _latest(state, catalog)
    return bool(dag and dag.is_paused_upon_creation)


def _latest(state: DagState, catalog: Catalog) -> SerializedDag | None:
    version_id = catalog.latest_version_id(state.dag_id)
    return catalog.get(version_id) if version_id else None


def _active_automated(state: DagState) -> int:
    """Active (queued or running) runs that count against ``max_active_runs`` for the
    schedule: every run but backfill runs (Airflow 3)."""
    return sum(1 for r in state.active if state.runs[r].run_type != "backfill")


def _info(last: ScheduledInterval | None) -> DagRunInfo | None:
    if last is None:
        return None
    return DagRunInfo(
        run_after=last.run_after,
        logical_date=last.logical_date,
        data_interval=DataInterval(last.data_interval_start, last.data_interval_end),
    )


# The next run after a given last run, memoized per DAG version and last run:
# ``schedule_wake`` runs on every decision. A cached answer stays right while it lies in
# the future (or is None): with catchup=False the timetable's answer is the later of a
# run already due at ``now`` and the run after the last one, so once it is in the
# future it does not change until it is due; with catchup=True it does not depend on
# ``now`` at all. The entry keeps the DAG object, so its ``id`` cannot be reused.
_NEXT_CACHE: dict[
    tuple[str, int, ScheduledInterval | None], tuple[SerializedDag, DagRunInfo | None]
] = {}
_NEXT_CACHE_MAX = 20_000


def _next(
    dag: SerializedDag, version_id: str, last: ScheduledInterval | None, now: datetime
) -> DagRunInfo | None:
    assert dag.timetable is not None
    continuous = dag.timetable.kind == "continuous"
    key = (version_id, id(dag), last)
    cached = None if continuous else _NEXT_CACHE.get(key)
    if cached is not None and cached[0] is dag and (cached[1] is None or cached[1].run_after > now):
        return cached[1]
    try:
        restriction = restriction_for(
            start_date=dag.start_date, end_date=dag.end_date, catchup=dag.catchup
        )
        if continuous:
            return continuous_dagrun_info(last=_info(last), restriction=restriction, now=now)
        info = next_dagrun_info(dag.timetable, last=_info(last), restriction=restriction, now=now)
    except ValueError:  # TimetableInvalid, a naive date: this version schedules nothing
        info = None
    if len(_NEXT_CACHE) >= _NEXT_CACHE_MAX:
        _NEXT_CACHE.clear()
    _NEXT_CACHE[key] = (dag, info)
    return info


def _scheduled_dag(state: DagState, catalog: Catalog) -> tuple[str, SerializedDag] | None:
    """The latest version of a DAG with a time-based timetable, if it is not paused."""
    version_id = catalog.latest_version_id(state.dag_id)
    dag = catalog.get(version_id) if version_id else None
    if version_id is None or dag is None or dag.timetable is None:
        return None
    paused = state.is_paused if state.is_paused is not None else dag.is_paused_upon_creation
    if paused or time_part(dag.timetable) is None:
        return None
    return version_id, dag


# --------------------------------------------------------------------------- deciding
def plan(out: Outbox) -> None:
    """Time out overdue runs, auto-pause after too many failed runs, and create the
    scheduled runs that are due (see the module docstring)."""
    _time_out_runs(out)
    _maybe_auto_pause(out)
    found = _scheduled_dag(out.state, out.catalog)
    if found is None:
        return
    version_id, dag = found
    continuous = dag.timetable is not None and dag.timetable.kind == "continuous"
    budget = dag.max_active_runs - _active_automated(out.state)
    if continuous:
        budget = min(budget, 1) if _active_automated(out.state) == 0 else 0
    while budget > 0:
        info = _next(dag, version_id, out.state.last_scheduled, out.now)
        if info is None or info.run_after > out.now:
            return
        run_id = run_id_for("scheduled", info.logical_date)
        if run_id in out.state.runs:
            return  # taken (by a run created otherwise): never write a run twice
        out.emit(
            DagRunQueued(
                dag_id=dag.dag_id,
                run_id=run_id,
                version_id=version_id,
                run_type="scheduled",
                logical_date=info.logical_date,
                queued_at=out.now,
                triggered_by="timetable",  # Airflow's DagRunTriggeredByType.TIMETABLE
                data_interval_start=info.data_interval.start,
                data_interval_end=info.data_interval.end,
                run_after=info.run_after,
            ),
            key=("DagRunQueued", dag.dag_id, run_id),
            correlation_id=run_id,
        )
        budget -= 1


def _timeout(run: Run, catalog: Catalog) -> timedelta | None:
    if run.state != "running" or run.start_date is None:
        return None
    dag = catalog.get(run.version_id)
    if dag is None or not dag.dagrun_timeout_seconds:
        return None
    return timedelta(seconds=dag.dagrun_timeout_seconds)


def _time_out_runs(out: Outbox) -> None:
    for run_id in sorted(out.state.active):
        run = out.state.runs[run_id]
        limit = _timeout(run, out.catalog)
        if limit is None or run.start_date is None or out.now - run.start_date < limit:
            continue
        _time_out(out, run, limit)


def _time_out(out: Outbox, run: Run, limit: timedelta) -> None:
    """Airflow's ``dagrun_timeout``: the run fails, unfinished instances are skipped."""
    dag = out.catalog.get(run.version_id)
    assert dag is not None
    topo = topology(dag)
    for task_id in topo.order:
        for map_index in run.map_indexes(task_id):
            ti = out.state.runs[run.run_id].ti(task_id, map_index)
            if ti.state in FINISHED_TASK_STATES:
                continue
            out.emit(
                TaskInstanceStateSet(
                    dag_id=run.dag_id,
                    run_id=run.run_id,
                    task_id=task_id,
                    map_index=map_index,
                    try_number=ti.try_number,
                    state="skipped",
                    at=out.now,
                    set_by=TIMEOUT_BY,
                ),
                key=(
                    "StateSet",
                    run.dag_id,
                    run.run_id,
                    task_id,
                    map_index,
                    ti.try_number,
                    "timeout",
                ),
                correlation_id=run.run_id,
            )
            out.cancel(run, ti, state="skipped", reason="dagrun_timeout")
    out.emit(
        DagRunFailed(
            dag_id=run.dag_id,
            run_id=run.run_id,
            end_date=out.now,
            reason=f"timed out (dagrun_timeout {limit})",
        ),
        key=("DagRunFinished", run.dag_id, run.run_id),
        correlation_id=run.run_id,
    )


def _maybe_auto_pause(out: Outbox) -> None:
    """``max_consecutive_failed_dag_runs``: checked when a run failed in this decision
    (Airflow checks in ``DagRun.update_state``), over the DAG's last N runs."""
    failed = [e for e in out.events if isinstance(e.data, DagRunFailed)]
    if not failed or is_paused(out.state, out.catalog):
        return
    dag = _latest(out.state, out.catalog)
    limit = dag.max_consecutive_failed_dag_runs if dag is not None else 0
    if limit <= 0 or len(out.state.runs) < limit:
        return
    last = heapq.nlargest(limit, out.state.runs.values(), key=_created)
    if all(r.state == "failed" for r in last):
        out.emit(
            DagPauseChanged(
                dag_id=out.state.dag_id,
                is_paused=True,
                changed_by=f"scheduler: {limit} consecutive failed runs"
                " (max_consecutive_failed_dag_runs)",
            ),
            key=("DagPauseChanged", out.state.dag_id, "auto", last[0].run_id),
            correlation_id=None,
        )


def _created(run: Run) -> tuple[datetime, datetime, str]:
    return (run.queued_at, run.logical_date or run.queued_at, run.run_id)


# --------------------------------------------------------------------------- waking
def schedule_wake(state: DagState, catalog: Catalog, now: datetime | None) -> datetime | None:
    """The earliest time :func:`plan` has something to do: a running run's timeout, or
    the next scheduled run (None while paused or at ``max_active_runs``: a run ending
    or an unpause decides again)."""
    wake: datetime | None = None
    for run_id in state.active:
        run = state.runs[run_id]
        limit = _timeout(run, catalog)
        if limit is not None and run.start_date is not None:
            at = run.start_date + limit
            wake = at if wake is None or at < wake else wake
    if now is None:
        return wake
    found = _scheduled_dag(state, catalog)
    if found is None:
        return wake
    version_id, dag = found
    active = _active_automated(state)
    if active >= dag.max_active_runs:
        return wake
    if dag.timetable is not None and dag.timetable.kind == "continuous" and active:
        return wake
    info = _next(dag, version_id, state.last_scheduled, now)
    if info is None:
        return wake
    if info.run_after <= now and run_id_for("scheduled", info.logical_date) in state.runs:
        return wake  # taken by another run: plan() creates nothing, do not spin
    return info.run_after if wake is None or info.run_after < wake else wake
