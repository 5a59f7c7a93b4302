"""The scheduler's facts on the run log (``<prefix>.runs``).

Part of :mod:`ledgerflow.common.events` (import from there). Only pydantic and the
standard library.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from ledgerflow.common.events._base import _AttemptRef, _Payload, _TaskRef
from ledgerflow.common.events.commands import ClearableState
from pydantic import Field


# --------------------------------------------------------------------------- run log: scheduler facts
class DagPauseChanged(_Payload):
    type: Literal["DagPauseChanged"] = "DagPauseChanged"
    dag_id: str
    is_paused: bool
    changed_by: str | None = None


class DagRunQueued(_Payload):
    """A run was created. It keeps ``version_id`` for its whole life."""

    type: Literal["DagRunQueued"] = "DagRunQueued"
    dag_id: str
    run_id: str
    version_id: str
    run_type: Literal["manual", "scheduled", "backfill", "asset_triggered"] = "manual"
    conf: dict[str, Any] = Field(default_factory=dict)
    logical_date: datetime | None = None
    queued_at: datetime
    triggered_by: str | None = None
    note: str | None = None
    # Issue 6 (all optional, so v1 payloads without them still read): the data interval
    # and the time the run was due (``run_after``) for scheduled and backfill runs, the
    # backfill a run belongs to, and the asset events that triggered an asset run.
    data_interval_start: datetime | None = None
    data_interval_end: datetime | None = None
    run_after: datetime | None = None
    backfill_id: int | None = None
    triggering_asset_events: tuple[dict[str, Any], ...] = ()


class DagRunStarted(_Payload):
    type: Literal["DagRunStarted"] = "DagRunStarted"
    dag_id: str
    run_id: str
    start_date: datetime


class DagRunSucceeded(_Payload):
    type: Literal["DagRunSucceeded"] = "DagRunSucceeded"
    dag_id: str
    run_id: str
    end_date: datetime


class DagRunFailed(_Payload):
    type: Literal["DagRunFailed"] = "DagRunFailed"
    dag_id: str
    run_id: str
    end_date: datetime
    reason: str | None = None


class TriggerRejected(_Payload):
    """A ``TriggerDagRun`` command was refused; a rejection is an output, not an error."""

    type: Literal["TriggerRejected"] = "TriggerRejected"
    dag_id: str
    run_id: str
    reason: str
    command_id: str


class TaskInstanceQueued(_AttemptRef):
    """The scheduler decided to run attempt ``try_number`` and sent a work item for it."""

    type: Literal["TaskInstanceQueued"] = "TaskInstanceQueued"
    queue: str
    pool: str = "default_pool"
    priority_weight: int = 1
    queued_when: datetime


class TaskInstanceUpForRetry(_AttemptRef):
    """Attempt ``try_number`` failed and another is due at ``retry_at``."""

    type: Literal["TaskInstanceUpForRetry"] = "TaskInstanceUpForRetry"
    retry_at: datetime


class TaskInstanceFailed(_AttemptRef):
    """Attempt ``try_number`` failed and no retries are left: the task instance failed."""

    type: Literal["TaskInstanceFailed"] = "TaskInstanceFailed"
    end_date: datetime


class TaskInstanceUpstreamFailed(_TaskRef):
    type: Literal["TaskInstanceUpstreamFailed"] = "TaskInstanceUpstreamFailed"
    at: datetime


class TaskInstanceMapExpanded(_TaskRef):
    """A mapped task's upstream XComs are known: it has ``length`` map indexes
    (0 .. length-1). Written once per task per run with ``map_index=-1``."""

    type: Literal["TaskInstanceMapExpanded"] = "TaskInstanceMapExpanded"
    length: int = Field(ge=0)
    at: datetime


class TaskInstanceSkipped(_TaskRef):
    """Skipped by the scheduler: a trigger rule, a branch or short-circuit upstream, a
    mapped task with zero indexes, a ``soft_fail`` sensor timing out (``reason``)."""

    type: Literal["TaskInstanceSkipped"] = "TaskInstanceSkipped"
    at: datetime
    reason: str | None = None


class TaskInstanceFailedByScheduler(_TaskRef):
    """The scheduler failed a task instance without an attempt failing: a
    reschedule-mode sensor ran out of ``timeout`` (no retry, as in Airflow), or a mapped
    task's upstream value cannot be mapped over. ``try_number`` is the last attempt's
    (0 when none ran); ``reason`` says what happened."""

    type: Literal["TaskInstanceFailedByScheduler"] = "TaskInstanceFailedByScheduler"
    try_number: int = Field(ge=0)
    at: datetime
    reason: str


class TaskAttemptZombie(_AttemptRef):
    """The attempt's executor stopped heartbeating: the scheduler failed the attempt
    (Airflow's zombie task) and retries it per its retries, on any executor. A late
    report of the attempt is dropped by its ``try_number``."""

    type: Literal["TaskAttemptZombie"] = "TaskAttemptZombie"
    executor_id: str | None = None
    last_heartbeat: datetime
    at: datetime
    reason: str


class TaskInstanceCleared(_TaskRef):
    """A user cleared the instance: it is back to no state and runs again with the next
    ``try_number`` (``try_number`` here is the last attempt's, 0 if none ran) and a
    fresh set of retries."""

    type: Literal["TaskInstanceCleared"] = "TaskInstanceCleared"
    try_number: int = Field(ge=0)
    at: datetime
    cleared_by: str | None = None


class TaskInstanceStateSet(_TaskRef):
    """A user marked the instance ``state`` (its last attempt was ``try_number``, 0 if
    none ran). A running attempt is killed; its report is dropped."""

    type: Literal["TaskInstanceStateSet"] = "TaskInstanceStateSet"
    try_number: int = Field(ge=0)
    state: ClearableState
    at: datetime
    set_by: str | None = None


class DagRunStateSet(_Payload):
    """A user marked the run (``success``/``failed``), or re-opened it (``queued``:
    after a clear or a mark, the run is scheduled again)."""

    type: Literal["DagRunStateSet"] = "DagRunStateSet"
    dag_id: str
    run_id: str
    state: Literal["success", "failed", "queued"]
    at: datetime
    set_by: str | None = None


class TaskInstanceScheduled(_AttemptRef):
    """The instance may run (its trigger rule and ``depends_on_past`` allow it) and
    waits for the pool arbiter (ADR 0011) to grant attempt ``try_number`` its slots
    within its pool and concurrency limits (Airflow's ``scheduled`` state).
    ``priority_weight`` is the effective weight (after ``weight_rule``)."""

    type: Literal["TaskInstanceScheduled"] = "TaskInstanceScheduled"
    pool: str = "default_pool"
    pool_slots: int = Field(default=1, ge=1)
    priority_weight: int = 1
    max_active_tasks: int | None = None
    max_active_tis_per_dag: int | None = None
    max_active_tis_per_dagrun: int | None = None
    at: datetime


class PoolSlotsGranted(_AttemptRef):
    """The pool arbiter (ADR 0011) gave attempt ``try_number`` its slots: the scheduler
    owning the DAG queues it. Written by ``ledgerflow/pools`` to the run log."""

    type: Literal["PoolSlotsGranted"] = "PoolSlotsGranted"
    pool: str
    slots: int = Field(ge=1)
    at: datetime
