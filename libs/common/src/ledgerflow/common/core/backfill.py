"""Backfills in the pure core: commands in, facts and backfill runs out (Airflow 3's
backfill model, ``airflow/models/backfill.py``, with the run creation done as the
scheduler's decision instead of database rows).

- ``CreateBackfill``: the logical dates of the DAG's schedule in ``[from_date,
  to_date]`` whose data interval has ended are resolved against the DAG's runs
  (:func:`~ledgerflow.common.core.backfill_state.plan`) and recorded in
  ``BackfillCreated``, or the command is refused with ``BackfillRejected`` (another
  backfill is active, unknown DAG, non-periodic schedule, nothing to run).
- Runs are made in plan order while fewer than the backfill's ``max_active_runs`` of its
  runs are unfinished: a new date gets ``DagRunQueued(run_type="backfill",
  run_id="backfill__<logical date>")``; a date to re-run gets
  ``BackfillRunReprocessed`` and the run is cleared (every task instance, re-opened
  queued), as Airflow's ``_handle_clear_run`` does. As runs finish, more are made.
- Backfill runs start as soon as they are queued: the backfill's ``max_active_runs``
  applies instead of the DAG's, and they run while the DAG is paused (Airflow 3 starts
  backfill runs independently of the DAG's limit and pause flag).
- Pause stops making runs (runs already made go on); unpause resumes. Cancel stops
  making runs and marks the backfill's runs that have not started yet failed (Airflow's
  ``cancel_backfill`` sets queued runs to failed); running runs finish; the backfill is
  completed at once. Otherwise it is completed once every planned run has finished.

Every fact has an id derived from the backfill and what it is about (ADR 0003), and
each step is level-triggered on the folded state, so recovery (replay, then a full
tick) makes exactly the runs that were due and not made.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial

from ledgerflow.common.core.backfill_state import (
    Backfill,
    active_backfill,
    backfill_problem,
    existing_runs,
    plan,
    plan_problem,
)
from ledgerflow.common.core.evolve import SCHEDULER_SOURCE
from ledgerflow.common.core.interventions import clear, set_run_state
from ledgerflow.common.core.outbox import Outbox
from ledgerflow.common.core.state import Run
from ledgerflow.common.core.timetables import TimeRestriction, run_id_for, runs_between
from ledgerflow.common.events import (
    BackfillCancelled,
    BackfillCompleted,
    BackfillCreated,
    BackfillPaused,
    BackfillRejected,
    BackfillRunPlan,
    BackfillRunReprocessed,
    BackfillUnpaused,
    CancelBackfill,
    ClearTaskInstances,
    CreateBackfill,
    DagRunQueued,
    DagRunStarted,
    Envelope,
    PauseBackfill,
    SetDagRunState,
    UnpauseBackfill,
    deterministic_id,
    make_envelope,
)
from pydantic import BaseModel

BACKFILL_COMMANDS = (CreateBackfill, PauseBackfill, UnpauseBackfill, CancelBackfill)


def on_backfill_command(out: Outbox, cmd: Envelope) -> None:
    """Apply a backfill command (``decide`` dispatches the four commands here)."""
    data = cmd.data
    if isinstance(data, CreateBackfill):
        _create(out, cmd, data)
        return
    assert isinstance(data, PauseBackfill | UnpauseBackfill | CancelBackfill)
    b = out.state.backfills.get(data.backfill_id)
    if b is None or not b.active or cmd.id in b.commands:
        return  # unknown, finished, or this command redelivered: nothing to do
    ids = (b.dag_id, b.backfill_id, cmd.id)
    if isinstance(data, PauseBackfill):
        if not b.is_paused:
            fact = BackfillPaused(
                dag_id=b.dag_id, backfill_id=b.backfill_id, at=out.now, by=data.requested_by
            )
            out.emit(fact, key=("BackfillPaused", *ids), correlation_id=None)
    elif isinstance(data, UnpauseBackfill):
        if b.is_paused:
            fact_u = BackfillUnpaused(
                dag_id=b.dag_id, backfill_id=b.backfill_id, at=out.now, by=data.requested_by
            )
            out.emit(fact_u, key=("BackfillUnpaused", *ids), correlation_id=None)
            out.start = True
    else:
        _cancel(out, cmd, b, data.requested_by)


def _create(out: Outbox, cmd: Envelope, data: CreateBackfill) -> None:
    if data.backfill_id in out.state.backfills:
        return  # redelivered
    items: tuple[BackfillRunPlan, ...] = ()
    version_id = out.catalog.latest_version_id(data.dag_id)
    dag = out.catalog.get(version_id) if version_id else None
    other = active_backfill(out.state)
    if dag is None:
        reason: str | None = f"DAG {data.dag_id!r} is not known to the scheduler"
    elif other is not None:
        reason = (
            f"There is already a running backfill for dag {data.dag_id} "
            f"(backfill {other.backfill_id})"
        )
    else:
        problem = backfill_problem(
            dag,
            from_date=data.from_date,
            to_date=data.to_date,
            run_backwards=data.run_backwards,
            reprocess_behavior=data.reprocess_behavior,
            now=out.now,
        )
        reason = problem[1] if problem is not None else None
    if reason is None and dag is not None and dag.timetable is not None:
        try:
            infos = runs_between(
                dag.timetable,
                start=data.from_date,
                end=data.to_date,
                restriction=TimeRestriction(
                    earliest=dag.start_date, latest=dag.end_date, catchup=True
                ),
            )
        except (ValueError, OverflowError) as exc:  # TimetableInvalid, dates out of range
            infos, reason = [], f"the DAG's schedule cannot be evaluated: {exc}"
        items = plan(
            infos,
            existing_runs(out.state),
            reprocess_behavior=data.reprocess_behavior,
            run_backwards=data.run_backwards,
            now=out.now,
            run_id_for=run_id_for,
        )
        reason = reason or plan_problem(data.dag_id, items)
    if reason is not None:
        out.emit(
            BackfillRejected(
                dag_id=data.dag_id, backfill_id=data.backfill_id, reason=reason, command_id=cmd.id
            ),
            key=("BackfillRejected", cmd.id),
            correlation_id=None,
        )
        return
    out.emit(
        BackfillCreated(
            dag_id=data.dag_id,
            backfill_id=data.backfill_id,
            from_date=data.from_date,
            to_date=data.to_date,
            run_backwards=data.run_backwards,
            dag_run_conf=data.dag_run_conf,
            reprocess_behavior=data.reprocess_behavior,
            max_active_runs=data.max_active_runs,
            created_by=data.requested_by,
            created_at=cmd.time,
            runs=items,
            command_id=cmd.id,
        ),
        key=("BackfillCreated", data.dag_id, data.backfill_id),
        correlation_id=None,
    )
    out.start = True


def _cancel(out: Outbox, cmd: Envelope, b: Backfill, by: str | None) -> None:
    out.emit(
        BackfillCancelled(dag_id=b.dag_id, backfill_id=b.backfill_id, at=out.now, by=by),
        key=("BackfillCancelled", b.dag_id, b.backfill_id),
        correlation_id=None,
    )
    for item in b.runs:
        run = out.state.runs.get(item.run_id or "")
        if run is None or run.state != "queued" or not _started(out, b, item):
            continue
        synthetic = _synthetic(
            out,
            SetDagRunState(dag_id=b.dag_id, run_id=run.run_id, state="failed", requested_by=by),
            ("BackfillCancelRun", b.dag_id, b.backfill_id, run.run_id),
        )
        assert isinstance(synthetic.data, SetDagRunState)
        _as(out, synthetic, partial(set_run_state, out, synthetic, synthetic.data))
    _complete(out, b, cancelled=True)


# --------------------------------------------------------------------------- progress
def advance_backfills(out: Outbox) -> None:
    """Make the runs that are due for the DAG's active backfill, start its queued runs
    and complete it when all its runs are done. Called whenever runs may start."""
    b = active_backfill(out.state)
    if b is not None:
        _advance(out, b)
    _start_backfill_runs(out)


def _advance(out: Outbox, b: Backfill) -> None:
    by_date: dict[datetime, str] | None = None
    in_flight = 0
    pending: list[BackfillRunPlan] = []
    for item in b.runs:
        if item.action == "skip":
            continue
        run = out.state.runs.get(item.run_id or "")
        if _started(out, b, item):
            if run is not None and not run.finished:
                in_flight += 1
            elif item.action == "rerun" and run is not None and not _cleared(run, b, item):
                _clear_for(out, b, item)  # announced, not yet cleared (a crash in between)
                in_flight += 1
            continue
        if item.action == "create":
            if by_date is None:
                by_date = {
                    r.logical_date: r.run_id for r in out.state.runs.values() if r.logical_date
                }
            if item.logical_date in by_date:
                continue  # another run took this date since the plan ("in flight")
        pending.append(item)
    if not b.is_paused:
        for item in pending:
            if in_flight >= b.max_active_runs:
                break
            if _make_run(out, b, item):
                in_flight += 1
    if in_flight == 0 and all(_started(out, b, i) for i in pending):
        _complete(out, b, cancelled=False)


def _started(out: Outbox, b: Backfill, item: BackfillRunPlan) -> bool:
    if item.action == "create":
        return (item.run_id or "") in out.state.runs
    if item.action == "rerun":
        return (item.run_id or "") in b.reprocessed
    return False


def _clear_id(b: Backfill, item: BackfillRunPlan) -> str:
    return deterministic_id("BackfillClear", b.dag_id, b.backfill_id, item.run_id)


def _cleared(run: Run, b: Backfill, item: BackfillRunPlan) -> bool:
    return _clear_id(b, item) in run.commands


def _make_run(out: Outbox, b: Backfill, item: BackfillRunPlan) -> bool:
    """Queue a new run or re-run an existing one; False if it cannot be made now."""
    assert item.run_id is not None
    if item.action == "create":
        version_id = out.catalog.latest_version_id(b.dag_id)
        if version_id is None:
            return False
        out.emit(
            DagRunQueued(
                dag_id=b.dag_id,
                run_id=item.run_id,
                version_id=version_id,
                run_type="backfill",
                conf=dict(b.dag_run_conf),
                logical_date=item.logical_date,
                queued_at=out.now,
                triggered_by=b.created_by,
                data_interval_start=item.data_interval_start,
                data_interval_end=item.data_interval_end,
                run_after=item.run_after,
                backfill_id=b.backfill_id,
            ),
            key=("DagRunQueued", b.dag_id, item.run_id),
            correlation_id=item.run_id,
        )
        return True
    run = out.state.runs.get(item.run_id)
    if run is None:
        return False  # deleted since the plan
    if not run.finished:
        return False  # running again for another reason: wait for it
    out.emit(
        BackfillRunReprocessed(
            dag_id=b.dag_id,
            backfill_id=b.backfill_id,
            run_id=item.run_id,
            logical_date=item.logical_date,
            at=out.now,
        ),
        key=("BackfillRunReprocessed", b.dag_id, b.backfill_id, item.run_id),
        correlation_id=item.run_id,
    )
    _clear_for(out, b, item)
    return True


def _clear_for(out: Outbox, b: Backfill, item: BackfillRunPlan) -> None:
    """Clear the whole run, re-opening it queued (the clear intervention, applied once:
    its facts carry a command id derived from the backfill and the run)."""
    assert item.run_id is not None
    synthetic = _synthetic(
        out,
        ClearTaskInstances(dag_id=b.dag_id, run_ids=(item.run_id,), requested_by=b.created_by),
        ("BackfillClear", b.dag_id, b.backfill_id, item.run_id),
    )
    assert isinstance(synthetic.data, ClearTaskInstances)
    _as(out, synthetic, partial(clear, out, synthetic, synthetic.data))


def _complete(out: Outbox, b: Backfill, *, cancelled: bool) -> None:
    out.emit(
        BackfillCompleted(
            dag_id=b.dag_id, backfill_id=b.backfill_id, at=out.now, cancelled=cancelled
        ),
        key=("BackfillCompleted", b.dag_id, b.backfill_id),
        correlation_id=None,
    )


def _start_backfill_runs(out: Outbox) -> None:
    """Start queued backfill runs (their backfill limited how many exist)."""
    for run_id in sorted(out.state.active):
        run = out.state.runs[run_id]
        if run.run_type != "backfill" or run.state != "queued":
            continue
        if out.catalog.get(run.version_id) is None:
            continue
        out.emit(
            DagRunStarted(dag_id=run.dag_id, run_id=run.run_id, start_date=out.now),
            key=("DagRunStarted", run.dag_id, run.run_id),
            correlation_id=run.run_id,
        )


# --------------------------------------------------------------------------- helpers
def _synthetic(out: Outbox, data: BaseModel, key: tuple[object, ...]) -> Envelope:
    """A command the backfill gives itself; its id (derived from ``key``) marks the
    facts it causes, so the fold knows it was applied."""
    return make_envelope(
        data,
        id=deterministic_id(*key),
        source=SCHEDULER_SOURCE,
        time=out.now,
        aggregate_key=out.state.dag_id,
    )


def _as(out: Outbox, cause: Envelope, apply: Callable[[], None]) -> None:
    """Run ``apply`` with ``cause`` as the causation of what it emits."""
    previous, out.cause = out.cause, cause
    try:
        apply()
    finally:
        out.cause = previous
