"""``evolve(state, event) -> state``: fold one run-log event into a DAG's state.

Pure: no I/O, no clock. Every branch is guarded so that applying an event a second time,
or an event about an older attempt, returns the state unchanged.
"""

from __future__ import annotations

from ledgerflow.common.core.backfill_state import BACKFILL_FACTS, fold_backfill
from ledgerflow.common.core.messages import drop_pending, fold_message
from ledgerflow.common.core.state import (
    DagState,
    Run,
    RunStateName,
    ScheduledInterval,
    TaskInstance,
    updated,
)
from ledgerflow.common.events import (
    DagPauseChanged,
    DagRunFailed,
    DagRunQueued,
    DagRunStarted,
    DagRunStateSet,
    DagRunSucceeded,
    Envelope,
    ExternalMessageReceived,
    PoolSlotsGranted,
    TaskAttemptFailed,
    TaskAttemptHeartbeat,
    TaskAttemptRescheduled,
    TaskAttemptSkipped,
    TaskAttemptStarted,
    TaskAttemptSucceeded,
    TaskAttemptZombie,
    TaskInstanceCleared,
    TaskInstanceFailed,
    TaskInstanceFailedByScheduler,
    TaskInstanceMapExpanded,
    TaskInstanceQueued,
    TaskInstanceScheduled,
    TaskInstanceSkipped,
    TaskInstanceStateSet,
    TaskInstanceUpForRetry,
    TaskInstanceUpstreamFailed,
)

SCHEDULER_SOURCE = "ledgerflow/scheduler"

_ATTEMPT_OPEN = ("queued", "running")
_MAY_QUEUE = (None, "up_for_retry", "up_for_reschedule")
_USER_FACTS = (TaskInstanceCleared, TaskInstanceStateSet, DagRunStateSet)


def evolve(state: DagState, event: Envelope) -> DagState:
    """Apply one event about ``state.dag_id``. Unknown or irrelevant events are ignored."""
    new = _evolve(state, event)
    if isinstance(event.data, _USER_FACTS) and event.causation_id:
        # Remember the command that changed the run, so its redelivery does nothing.
        run = new.runs.get(event.data.run_id)
        if run is not None and event.causation_id not in run.commands:
            new = new.with_run(updated(run, commands=run.commands | {event.causation_id}))
    return new


def _evolve(state: DagState, event: Envelope) -> DagState:
    if event.source == SCHEDULER_SOURCE and event.sequence > state.sequence:
        state = updated(state, sequence=event.sequence)
    data = event.data
    match data:
        case DagPauseChanged():
            if not data.is_paused:  # Kafka-triggered runs drop what came while paused
                state = updated(state, unpaused_at=event.time)
            return updated(state, is_paused=data.is_paused)
        case ExternalMessageReceived():
            return fold_message(state, event)  # ADR 0014
        case DagRunQueued():
            if data.run_id in state.runs:
                return state
            state = drop_pending(state, data.run_id)
            if data.run_type == "scheduled":
                state = _scheduled(state, data)
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
                    triggering_asset_events=data.triggering_asset_events,
                )
            )
        case DagRunStarted():
            run = state.runs.get(data.run_id)
            if run is None or run.state != "queued":
                return state
            return state.with_run(updated(run, state="running", start_date=data.start_date))
        case DagRunStateSet():
            run = state.runs.get(data.run_id)
            if run is None or run.state == data.state:
                return state
            if data.state == "queued":  # re-opened: scheduled again from the start
                return state.with_run(updated(run, state="queued", start_date=None, end_date=None))
            return state.with_run(updated(run, state=data.state, end_date=data.at))
        case DagRunSucceeded() | DagRunFailed():
            run = state.runs.get(data.run_id)
            if run is None or run.finished:
                return state
            new: RunStateName = "success" if isinstance(data, DagRunSucceeded) else "failed"
            return state.with_run(updated(run, state=new, end_date=data.end_date))
        case TaskInstanceMapExpanded():
            run = state.runs.get(data.run_id)
            if run is None or run.finished or data.task_id in run.map_lengths:
                return state
            if run.ti(data.task_id).state is not None:
                return state  # the placeholder was already decided (e.g. skipped)
            return state.with_run(run.with_map_length(data.task_id, data.length))
    if isinstance(data, BACKFILL_FACTS):
        return fold_backfill(state, event)
    return _evolve_task(state, event)


def _scheduled(state: DagState, data: DagRunQueued) -> DagState:
    """Remember the latest scheduled run (by logical date): the schedule goes on from it."""
    at = data.logical_date or data.run_after or data.queued_at
    last = state.last_scheduled
    if last is not None and at <= last.logical_date:
        return state
    run_after = data.run_after or at
    return updated(
        state,
        last_scheduled=ScheduledInterval(
            logical_date=at,
            run_after=run_after,
            data_interval_start=data.data_interval_start or at,
            data_interval_end=data.data_interval_end or run_after,
        ),
    )


def _evolve_task(state: DagState, event: Envelope) -> DagState:
    data = event.data
    run_id = getattr(data, "run_id", None)
    task_id = getattr(data, "task_id", None)
    if run_id is None or task_id is None:
        return state
    run = state.runs.get(run_id)
    if run is None or (run.finished and not isinstance(data, TaskInstanceStateSet)):
        return state  # a finished run changes only when a user marks it
    map_index: int = getattr(data, "map_index", -1)
    if (map_index < 0) == bool(run.map_lengths.get(task_id)):
        return state  # a placeholder after expansion, or an index before it: not ours
    ti = run.ti(task_id, map_index)
    new = _next_task(ti, data)
    if new is ti:
        return state
    return state.with_run(run.with_task(new))


def _next_task(ti: TaskInstance, data: object) -> TaskInstance:
    match data:
        case TaskInstanceScheduled():
            if data.try_number == ti.try_number + 1 and ti.state in _MAY_QUEUE:
                return updated(ti, state="scheduled", granted=False)
        case PoolSlotsGranted():
            if data.try_number == ti.try_number + 1 and ti.state == "scheduled":
                return updated(ti, granted=True)
        case TaskInstanceQueued():
            # Only the next attempt, and only from a state that allows queueing.
            if data.try_number == ti.try_number + 1 and ti.state in (*_MAY_QUEUE, "scheduled"):
                return updated(
                    ti,
                    state="queued",
                    try_number=data.try_number,
                    queued_when=data.queued_when,
                    start_date=None,
                    end_date=None,
                    retry_at=None,
                    reschedule_at=None,
                    hostname=None,
                    granted=False,
                )
        case TaskAttemptStarted():
            if data.try_number == ti.try_number and ti.state == "queued":
                return updated(
                    ti,
                    state="running",
                    start_date=data.start_date,
                    hostname=data.hostname,
                    first_poke_at=ti.first_poke_at or data.start_date,
                    executor_id=data.executor_id,
                    heartbeat_at=None,
                )
        case TaskAttemptHeartbeat():
            # Only the executor that started the attempt keeps it alive (a duplicate run
            # of the same attempt elsewhere does not), and only forward in time.
            if (
                data.try_number == ti.try_number
                and ti.state == "running"
                and ti.executor_id in (None, data.executor_id)
                and (ti.last_seen is None or data.at > ti.last_seen)
            ):
                return updated(ti, heartbeat_at=data.at)
        case TaskAttemptZombie():
            if data.try_number == ti.try_number and ti.state in _ATTEMPT_OPEN:
                return updated(ti, state="attempt_failed", end_date=data.at, retryable=True)
        case TaskInstanceCleared():
            if data.try_number == ti.try_number and ti.state is not None:
                return _cleared(ti, data.try_number)
        case TaskInstanceStateSet():
            if data.try_number == ti.try_number and ti.state != data.state:
                return updated(
                    ti,
                    state=data.state,
                    end_date=data.at,
                    retry_at=None,
                    reschedule_at=None,
                    reason=f"marked {data.state}" + (f" by {data.set_by}" if data.set_by else ""),
                )
        case TaskAttemptSucceeded():
            if data.try_number == ti.try_number and ti.state in _ATTEMPT_OPEN:
                return updated(
                    ti,
                    state="success",
                    end_date=data.end_date,
                    return_value=data.return_value,
                    xcoms=dict(data.xcoms),
                    follow_task_ids=data.follow_task_ids,
                    short_circuit=data.short_circuit,
                )
        case TaskAttemptSkipped():
            if data.try_number == ti.try_number and ti.state in _ATTEMPT_OPEN:
                return updated(ti, state="skipped", end_date=data.end_date, reason=data.reason)
        case TaskAttemptRescheduled():
            if data.try_number == ti.try_number and ti.state in _ATTEMPT_OPEN:
                return updated(
                    ti,
                    state="up_for_reschedule",
                    end_date=data.end_date,
                    reschedule_at=data.reschedule_date,
                    reschedules=ti.reschedules + 1,
                    first_poke_at=ti.first_poke_at or ti.start_date or ti.queued_when,
                )
        case TaskAttemptFailed():
            if data.try_number == ti.try_number and ti.state in _ATTEMPT_OPEN:
                return updated(
                    ti, state="attempt_failed", end_date=data.end_date, retryable=data.retryable
                )
        case TaskInstanceUpForRetry():
            if data.try_number == ti.try_number and ti.state == "attempt_failed":
                # A retry starts a new sensor cycle: its timeout counts from the next poke.
                return updated(ti, state="up_for_retry", retry_at=data.retry_at, first_poke_at=None)
        case TaskInstanceFailed():
            if data.try_number == ti.try_number and ti.state == "attempt_failed":
                return updated(ti, state="failed", end_date=data.end_date)
        case TaskInstanceFailedByScheduler():
            if data.try_number == ti.try_number and ti.state in (None, "up_for_reschedule"):
                return updated(
                    ti, state="failed", end_date=data.at, reschedule_at=None, reason=data.reason
                )
        case TaskInstanceUpstreamFailed():
            if ti.state is None:
                return updated(ti, state="upstream_failed", end_date=data.at)
        case TaskInstanceSkipped():
            if ti.state in (None, "up_for_reschedule"):
                return updated(
                    ti, state="skipped", end_date=data.at, reschedule_at=None, reason=data.reason
                )
    return ti


def _cleared(ti: TaskInstance, try_number: int) -> TaskInstance:
    """Back to no state, keeping the try count (the next attempt is ``try_number + 1``)
    and starting a fresh set of retries."""
    return TaskInstance(
        task_id=ti.task_id,
        map_index=ti.map_index,
        try_number=try_number,
        retry_base=try_number,
        start_date=ti.start_date,
        end_date=ti.end_date,
        hostname=ti.hostname,
    )
