"""``evolve(state, event) -> state``: fold one run-log event into a DAG's state.

Pure: no I/O, no clock. Every branch is guarded so that applying an event a second time,
or an event about an older attempt, returns the state unchanged.
"""

from __future__ import annotations

from dataclasses import replace

from ledgerflow.common.core.state import DagState, Run, TaskInstance
from ledgerflow.common.events import (
    DagPauseChanged,
    DagRunFailed,
    DagRunQueued,
    DagRunStarted,
    DagRunSucceeded,
    Envelope,
    TaskAttemptFailed,
    TaskAttemptStarted,
    TaskAttemptSucceeded,
    TaskInstanceFailed,
    TaskInstanceQueued,
    TaskInstanceSkipped,
    TaskInstanceUpForRetry,
    TaskInstanceUpstreamFailed,
)

SCHEDULER_SOURCE = "ledgerflow/scheduler"


def evolve(state: DagState, event: Envelope) -> DagState:
    """Apply one event about ``state.dag_id``. Unknown or irrelevant events are ignored."""
    if event.source == SCHEDULER_SOURCE and event.sequence > state.sequence:
        state = replace(state, sequence=event.sequence)
    data = event.data
    match data:
        case DagPauseChanged():
            return replace(state, is_paused=data.is_paused)
        case DagRunQueued():
            if data.run_id in state.runs:
                return state
            return state.with_run(
                Run(
                    dag_id=data.dag_id,
                    run_id=data.run_id,
                    version_id=data.version_id,
                    state="queued",
                    run_type=data.run_type,
                    queued_at=data.queued_at,
                    command_id=event.causation_id,
                    conf=dict(data.conf),
                    logical_date=data.logical_date,
                )
            )
        case DagRunStarted():
            run = state.runs.get(data.run_id)
            if run is None or run.state != "queued":
                return state
            return state.with_run(replace(run, state="running", start_date=data.start_date))
        case DagRunSucceeded() | DagRunFailed():
            run = state.runs.get(data.run_id)
            if run is None or run.finished:
                return state
            new = "success" if isinstance(data, DagRunSucceeded) else "failed"
            return state.with_run(replace(run, state=new, end_date=data.end_date))
    return _evolve_task(state, event)


def _evolve_task(state: DagState, event: Envelope) -> DagState:
    data = event.data
    run_id = getattr(data, "run_id", None)
    task_id = getattr(data, "task_id", None)
    if run_id is None or task_id is None:
        return state
    run = state.runs.get(run_id)
    if run is None or run.finished:
        return state
    ti = run.tasks.get(task_id) or TaskInstance(task_id=task_id)
    new = _next_task(ti, data)
    if new is ti:
        return state
    return state.with_run(run.with_task(new))


def _next_task(ti: TaskInstance, data: object) -> TaskInstance:
    match data:
        case TaskInstanceQueued():
            # Only the next attempt, and only from a state that allows queueing.
            if data.try_number == ti.try_number + 1 and ti.state in (None, "up_for_retry"):
                return replace(
                    ti,
                    state="queued",
                    try_number=data.try_number,
                    queued_when=data.queued_when,
                    start_date=None,
                    end_date=None,
                    retry_at=None,
                    hostname=None,
                )
        case TaskAttemptStarted():
            if data.try_number == ti.try_number and ti.state == "queued":
                return replace(
                    ti, state="running", start_date=data.start_date, hostname=data.hostname
                )
        case TaskAttemptSucceeded():
            if data.try_number == ti.try_number and ti.state in ("queued", "running"):
                return replace(
                    ti, state="success", end_date=data.end_date, return_value=data.return_value
                )
        case TaskAttemptFailed():
            if data.try_number == ti.try_number and ti.state in ("queued", "running"):
                return replace(
                    ti, state="attempt_failed", end_date=data.end_date, retryable=data.retryable
                )
        case TaskInstanceUpForRetry():
            if data.try_number == ti.try_number and ti.state == "attempt_failed":
                return replace(ti, state="up_for_retry", retry_at=data.retry_at)
        case TaskInstanceFailed():
            if data.try_number == ti.try_number and ti.state == "attempt_failed":
                return replace(ti, state="failed", end_date=data.end_date)
        case TaskInstanceUpstreamFailed():
            if ti.state is None:
                return replace(ti, state="upstream_failed", end_date=data.at)
        case TaskInstanceSkipped():
            if ti.state is None:
                return replace(ti, state="skipped", end_date=data.at)
    return ti
