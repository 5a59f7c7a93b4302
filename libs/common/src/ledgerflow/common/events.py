"""The event schema: every fact and command ledgerflow writes to Kafka.

Each message on a ledgerflow topic is one :class:`Envelope` serialized as a CloudEvents
1.0 JSON document (structured mode): the CloudEvents attributes ``specversion``, ``id``,
``source``, ``type``, ``time`` and ``subject``, ledgerflow's extension attributes
(``schemaversion``, ``sequence``, ``aggregatekey``, ``correlationid``, ``causationid``),
and ``data``, the payload: one member of the :data:`Payload` union, discriminated by its
``type`` field. Facts are named in the past tense, commands in the imperative.

W3C trace context does not live here: it travels in Kafka headers (``traceparent``).

This module imports only pydantic and the standard library.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from ledgerflow.common.dagmodel import SerializedDag
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

SCHEMA_VERSION = 1
"""Current schema version written by this code. Older versions are upcast on read."""

CLOUDEVENTS_TYPE_PREFIX = "io.ledgerflow."
CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"

_ID_NAMESPACE = uuid.UUID("6f1c8a5e-3d0b-4c7e-9a51-1e0f5b7d2c44")


def deterministic_id(*parts: object) -> str:
    """A stable event id from its identifying parts (the idempotency key).

    Deciding the same thing twice (after a crash, a redelivery or a replay) yields the
    same id, so readers can drop the second copy.
    """
    return str(uuid.uuid5(_ID_NAMESPACE, "\x1f".join(str(p) for p in parts)))


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _TaskRef(_Payload):
    """Identifies a task instance (one task of one run, one map index)."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1


class _AttemptRef(_TaskRef):
    """Identifies one attempt of a task instance; ``try_number`` counts from 1."""

    try_number: int = Field(ge=1)


# --------------------------------------------------------------------------- DAG versions
class DagVersionPublished(_Payload):
    """A DAG file was parsed and this DAG's structure and source are now a version.

    ``version_id`` is a hash of the file's content and the DAG id, so submitting the same
    file twice publishes the same version (and readers ignore the repeat).
    """

    type: Literal["DagVersionPublished"] = "DagVersionPublished"
    dag_id: str
    version_id: str
    version_number: int | None = None
    dag: SerializedDag
    source_code: str
    filename: str
    # Template files submitted with the DAG file (``.sql``/``.sh``/... next to it),
    # keyed by their path relative to the DAG file's directory (ADR 0006).
    extra_files: dict[str, str] = Field(default_factory=dict)
    submitted_by: str | None = None


class DagDeleted(_Payload):
    """The API deleted a DAG (Airflow's ``DELETE /dags/{dag_id}``): its versions, runs,
    task instances, logs and XComs leave the projection; the event log keeps them.

    Published on the dags topic (ordered with the DAG's versions). The API first pauses
    the DAG and fails its active runs with the usual commands, so the scheduler stops
    scheduling it; a later ``DagVersionPublished`` brings the DAG back (paused)."""

    type: Literal["DagDeleted"] = "DagDeleted"
    dag_id: str
    deleted_by: str | None = None


class DagRunDeleted(_Payload):
    """The API deleted one run (Airflow's ``DELETE .../dagRuns/{dag_run_id}``): its rows
    leave the projection; the event log keeps its history."""

    type: Literal["DagRunDeleted"] = "DagRunDeleted"
    dag_id: str
    run_id: str
    deleted_by: str | None = None


class DagFileImportFailed(_Payload):
    """A submitted DAG file did not parse (Airflow's import error). Keyed by filename."""

    type: Literal["DagFileImportFailed"] = "DagFileImportFailed"
    filename: str
    message: str
    kind: str
    lineno: int | None = None
    stack_trace: str = ""
    submitted_by: str | None = None


class DagFileImported(_Payload):
    """A submitted DAG file parsed: any import error recorded for it is resolved.
    Keyed by filename, like :class:`DagFileImportFailed`."""

    type: Literal["DagFileImported"] = "DagFileImported"
    filename: str
    dag_ids: tuple[str, ...] = ()
    submitted_by: str | None = None


# --------------------------------------------------------------------------- commands
class TriggerDagRun(_Payload):
    """Command: create a run of a DAG (manual trigger)."""

    type: Literal["TriggerDagRun"] = "TriggerDagRun"
    dag_id: str
    run_id: str
    conf: dict[str, Any] = Field(default_factory=dict)
    logical_date: datetime | None = None
    run_type: Literal["manual", "scheduled", "backfill", "asset_triggered"] = "manual"
    triggered_by: str | None = None
    note: str | None = None
    # Issue 6: set by the scheduler's asset trigger (ADR 0013), copied to DagRunQueued.
    triggering_asset_events: tuple[dict[str, Any], ...] = ()


class SetDagPaused(_Payload):
    """Command: pause or unpause a DAG."""

    type: Literal["SetDagPaused"] = "SetDagPaused"
    dag_id: str
    is_paused: bool
    requested_by: str | None = None


ClearableState = Literal["success", "failed", "skipped"]


class ClearTaskInstances(_Payload):
    """Command: run task instances again (Airflow's ``clearTaskInstances``).

    The API resolves which runs are meant (``run_ids``); the scheduler selects the
    instances in each with the same rules the API's dry run used
    (``ledgerflow.common.core.selection``). ``task_ids`` entries are task ids (every
    map index) or ``[task_id, map_index]`` pairs, as in Airflow; None means every task. A cleared instance runs again with
    the next ``try_number`` and a fresh set of retries; a finished run is re-opened
    (queued) as Airflow does; a running attempt is killed.
    """

    type: Literal["ClearTaskInstances"] = "ClearTaskInstances"
    dag_id: str
    run_ids: tuple[str, ...]
    task_ids: tuple[str | tuple[str, int], ...] | None = None
    only_failed: bool = False
    only_running: bool = False
    include_upstream: bool = False
    include_downstream: bool = False
    reset_dag_runs: bool = True
    requested_by: str | None = None


class SetTaskInstanceState(_Payload):
    """Command: mark task instances (Airflow's PATCH task instance ``new_state``).

    ``map_indexes`` None: every map index of the task. ``include_future``/``include_past``
    extend to the same task in later/earlier runs (by logical date). A running attempt
    of a marked instance is killed; its late report does not override the mark."""

    type: Literal["SetTaskInstanceState"] = "SetTaskInstanceState"
    dag_id: str
    run_id: str
    task_id: str
    map_indexes: tuple[int, ...] | None = None
    new_state: ClearableState
    include_upstream: bool = False
    include_downstream: bool = False
    include_future: bool = False
    include_past: bool = False
    requested_by: str | None = None


class SetDagRunState(_Payload):
    """Command: mark a run success, failed or queued (Airflow's PATCH dag run)."""

    type: Literal["SetDagRunState"] = "SetDagRunState"
    dag_id: str
    run_id: str
    state: Literal["success", "failed", "queued"]
    requested_by: str | None = None


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


# --------------------------------------------------------------------------- assets
class AssetEventReport(_Payload):
    """One asset event a successful attempt reports (an outlet, or an asset added
    through an outlet ``AssetAlias``; ``source_aliases`` names those aliases)."""

    name: str = Field(min_length=1)
    uri: str = ""
    group: str = "asset"
    extra: dict[str, Any] = Field(default_factory=dict)
    source_aliases: tuple[str, ...] = ()


class AssetEventEmitted(_Payload):
    """An asset was updated (Airflow's ``AssetEvent``), on ``<prefix>.assets`` keyed by
    the asset's name (ADR 0013). Written by the scheduler owning the producing DAG when
    it folds the task's success (id from the attempt and the asset, so deciding it again
    is a duplicate), or by the API (``POST /api/v2/assets/events``, ``source_dag_id``
    None, ``created_by`` the user). Every scheduler reads the whole topic to trigger the
    DAGs it owns that are scheduled on the asset."""

    type: Literal["AssetEventEmitted"] = "AssetEventEmitted"
    name: str = Field(min_length=1)
    uri: str = ""
    group: str = "asset"
    extra: dict[str, Any] = Field(default_factory=dict)
    source_aliases: tuple[str, ...] = ()
    source_dag_id: str | None = None
    source_run_id: str | None = None
    source_task_id: str | None = None
    source_map_index: int = -1
    source_try_number: int | None = None
    created_by: str | None = None
    timestamp: datetime


# --------------------------------------------------------------------------- external messages
class ExternalMessageReceived(_Payload):
    """A message on an external Kafka topic matched an asset watcher of the DAG
    (ADR 0014). Written to the run log (keyed by ``dag_id``) by the scheduler instance
    owning the DAG, with an id from (dag, asset, watcher, topic, partition, offset), so
    reading the same message again yields a copy readers drop. The core turns it into
    exactly one asset-triggered run (``run_id`` from the message's position), and the
    fold keeps, per (asset, watcher, topic, partition), the next offset to read.
    ``value`` is the parsed JSON, the text, or the bytes in base64 (``value_format``);
    None with ``value_omitted`` when the message was too large to copy into the log.
    ``timestamp_ms`` is the Kafka record timestamp."""

    type: Literal["ExternalMessageReceived"] = "ExternalMessageReceived"
    dag_id: str
    asset: str
    watcher: str
    topic: str
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)
    key: str | None = None
    value: Any = None
    value_format: Literal["json", "text", "bytes"] = "json"
    value_omitted: bool = False
    headers: dict[str, str] = Field(default_factory=dict)
    timestamp_ms: int | None = None


# --------------------------------------------------------------------------- backfills
# Airflow 3's backfills (``POST /api/v2/backfills``): the API sends the commands on the
# commands topic keyed by the DAG id; the scheduler owning the DAG resolves the logical
# dates, creates the runs (``DagRunQueued`` with ``run_type="backfill"``) and writes the
# facts below to the run log (``ledgerflow.common.core.backfill``).
ReprocessBehavior = Literal["none", "failed", "completed"]


class CreateBackfill(_Payload):
    """Command: create runs for the DAG's schedule between ``from_date`` and ``to_date``
    (Airflow's ``BackfillPostBody``). ``backfill_id`` is allocated by the API.
    ``reprocess_behavior``: what to do with a logical date that already has a run
    (``none``: skip it; ``failed``: re-run it if it failed; ``completed``: re-run it if
    it finished); a run still in flight is never touched."""

    type: Literal["CreateBackfill"] = "CreateBackfill"
    dag_id: str
    backfill_id: int = Field(ge=1)
    from_date: datetime
    to_date: datetime
    run_backwards: bool = False
    dag_run_conf: dict[str, Any] = Field(default_factory=dict)
    reprocess_behavior: ReprocessBehavior = "none"
    max_active_runs: int = Field(default=10, ge=1)
    requested_by: str | None = None


class PauseBackfill(_Payload):
    """Command: create no more runs for the backfill (runs already created go on)."""

    type: Literal["PauseBackfill"] = "PauseBackfill"
    dag_id: str
    backfill_id: int = Field(ge=1)
    requested_by: str | None = None


class UnpauseBackfill(_Payload):
    type: Literal["UnpauseBackfill"] = "UnpauseBackfill"
    dag_id: str
    backfill_id: int = Field(ge=1)
    requested_by: str | None = None


class CancelBackfill(_Payload):
    """Command: stop the backfill. No more runs are created, its runs that have not
    started are marked failed (as Airflow does); running ones finish."""

    type: Literal["CancelBackfill"] = "CancelBackfill"
    dag_id: str
    backfill_id: int = Field(ge=1)
    requested_by: str | None = None


class BackfillRunPlan(_Payload):
    """One logical date of a backfill and what the backfill does with it: ``create`` a
    run (``run_id`` is ``backfill__<logical date>``), ``rerun`` the existing run
    ``run_id`` (cleared and queued again) or ``skip`` it (``exception_reason``: Airflow's
    ``already exists`` / ``in flight``). ``sort_ordinal`` counts from 1 in run order."""

    sort_ordinal: int = Field(ge=1)
    logical_date: datetime
    action: Literal["create", "rerun", "skip"]
    run_id: str | None = None
    exception_reason: str | None = None
    data_interval_start: datetime | None = None
    data_interval_end: datetime | None = None
    run_after: datetime | None = None


class BackfillCreated(_Payload):
    """The scheduler accepted a ``CreateBackfill``: ``runs`` are its logical dates in run
    order with what happens to each. Runs are created (or re-run) in that order as the
    backfill's ``max_active_runs`` allows."""

    type: Literal["BackfillCreated"] = "BackfillCreated"
    dag_id: str
    backfill_id: int = Field(ge=1)
    from_date: datetime
    to_date: datetime
    run_backwards: bool = False
    dag_run_conf: dict[str, Any] = Field(default_factory=dict)
    reprocess_behavior: ReprocessBehavior = "none"
    max_active_runs: int = Field(default=10, ge=1)
    created_by: str | None = None
    created_at: datetime
    runs: tuple[BackfillRunPlan, ...] = ()
    command_id: str | None = None


class BackfillRejected(_Payload):
    """A ``CreateBackfill`` was refused (another backfill is active, the DAG is unknown
    or not periodic, no run to create); a rejection is an output, not an error."""

    type: Literal["BackfillRejected"] = "BackfillRejected"
    dag_id: str
    backfill_id: int
    reason: str
    command_id: str


class BackfillRunReprocessed(_Payload):
    """The backfill re-runs the existing run ``run_id`` (it is cleared next); from now
    on the run is a backfill run of ``backfill_id``."""

    type: Literal["BackfillRunReprocessed"] = "BackfillRunReprocessed"
    dag_id: str
    backfill_id: int
    run_id: str
    logical_date: datetime | None = None
    at: datetime


class BackfillPaused(_Payload):
    type: Literal["BackfillPaused"] = "BackfillPaused"
    dag_id: str
    backfill_id: int
    at: datetime
    by: str | None = None


class BackfillUnpaused(_Payload):
    type: Literal["BackfillUnpaused"] = "BackfillUnpaused"
    dag_id: str
    backfill_id: int
    at: datetime
    by: str | None = None


class BackfillCancelled(_Payload):
    """The backfill was cancelled: it creates no more runs and is completed at once."""

    type: Literal["BackfillCancelled"] = "BackfillCancelled"
    dag_id: str
    backfill_id: int
    at: datetime
    by: str | None = None


class BackfillCompleted(_Payload):
    """Every run of the backfill finished (or it was cancelled): it is no longer active,
    so the DAG may have another backfill."""

    type: Literal["BackfillCompleted"] = "BackfillCompleted"
    dag_id: str
    backfill_id: int
    at: datetime
    cancelled: bool = False


# --------------------------------------------------------------------------- run log: executor reports
class TaskAttemptStarted(_AttemptRef):
    """An executor started the attempt; ``start_date`` is the executor's clock."""

    type: Literal["TaskAttemptStarted"] = "TaskAttemptStarted"
    start_date: datetime
    hostname: str
    executor_id: str
    pid: int | None = None


class TaskAttemptSucceeded(_AttemptRef):
    """The attempt succeeded.

    - ``return_value``: the ``return_value`` XCom (None if the task pushed none);
      ``xcoms``: every other key the task pushed (``ti.xcom_push``).
    - ``follow_task_ids``: set by branch operators: the downstream tasks to follow
      (the other direct downstreams are skipped). None for non-branching tasks.
    - ``short_circuit``: set by short-circuit operators whose condition was falsy:
      ``"all"`` skips every downstream task (``ignore_downstream_trigger_rules=True``),
      ``"direct"`` skips only direct downstreams and lets trigger rules decide the rest.
    - ``rendered_fields``: the task's template fields after rendering (for the UI).
    """

    type: Literal["TaskAttemptSucceeded"] = "TaskAttemptSucceeded"
    end_date: datetime
    return_value: Any = None
    executor_id: str
    xcoms: dict[str, Any] = Field(default_factory=dict)
    follow_task_ids: tuple[str, ...] | None = None
    short_circuit: Literal["direct", "all"] | None = None
    rendered_fields: dict[str, Any] = Field(default_factory=dict)
    # Issue 6: the asset events of the task's outlets (and of assets added through its
    # outlet aliases); the scheduler owning the DAG publishes them (ADR 0013).
    asset_events: tuple[AssetEventReport, ...] = ()


class TaskAttemptSkipped(_AttemptRef):
    """The attempt ended the task instance as skipped (``AirflowSkipException``, a bash
    exit code 99, a ``soft_fail`` sensor timing out)."""

    type: Literal["TaskAttemptSkipped"] = "TaskAttemptSkipped"
    end_date: datetime
    reason: str | None = None
    executor_id: str
    rendered_fields: dict[str, Any] = Field(default_factory=dict)


class TaskAttemptRescheduled(_AttemptRef):
    """A reschedule-mode sensor poked, found nothing, and asks to be run again at
    ``reschedule_date`` (Airflow's ``up_for_reschedule``)."""

    type: Literal["TaskAttemptRescheduled"] = "TaskAttemptRescheduled"
    end_date: datetime
    reschedule_date: datetime
    executor_id: str


class TaskAttemptFailed(_AttemptRef):
    """The attempt failed. ``retryable=False`` means retries cannot help (e.g. the DAG
    version could not be loaded on the executor)."""

    type: Literal["TaskAttemptFailed"] = "TaskAttemptFailed"
    end_date: datetime
    error: str
    error_type: str | None = None
    retryable: bool = True
    executor_id: str
    rendered_fields: dict[str, Any] = Field(default_factory=dict)


class TaskAttemptHeartbeat(_AttemptRef):
    """The attempt is still running on ``executor_id`` (sent every
    ``LEDGERFLOW_HEARTBEAT_INTERVAL_SECONDS``). Its id is not deterministic per attempt:
    each heartbeat is a new fact."""

    type: Literal["TaskAttemptHeartbeat"] = "TaskAttemptHeartbeat"
    executor_id: str
    at: datetime


# --------------------------------------------------------------------------- control
class CancelTaskAttempt(_AttemptRef):
    """Control message: kill this attempt if you run it (on ``<prefix>.control``, read
    by every executor). ``state`` is what the executor reports the attempt as after
    the kill (what the user asked for; ``cleared`` and ``zombie`` report a failure);
    the scheduler has already decided the instance's state, so the report is only the
    attempt's end in its log."""

    type: Literal["CancelTaskAttempt"] = "CancelTaskAttempt"
    reason: str
    state: Literal["success", "failed", "skipped", "cleared", "zombie"] = "failed"


# --------------------------------------------------------------------------- work items
class XComEntry(_Payload):
    """One XCom value of a task instance of the same run."""

    task_id: str
    map_index: int = -1
    key: str = "return_value"
    value: Any = None


class RunTaskAttempt(_AttemptRef):
    """Work item: run this attempt. Sent to ``<prefix>.work.<queue>``."""

    type: Literal["RunTaskAttempt"] = "RunTaskAttempt"
    version_id: str
    queue: str
    conf: dict[str, Any] = Field(default_factory=dict)
    logical_date: datetime | None = None
    execution_timeout_seconds: float | None = None
    # Deprecated (schema 1 readers): return values by task id. Use ``xcoms``.
    upstream_xcoms: dict[str, Any] = Field(default_factory=dict)
    # Every XCom (all keys, all map indexes) of the task's upstream closure (its
    # ancestors), so the task need not ask anyone (ADR 0006).
    xcoms: tuple[XComEntry, ...] = ()
    run_type: str = "manual"
    data_interval_start: datetime | None = None
    data_interval_end: datetime | None = None
    # For mapped tasks: the number of map indexes (the runner needs no more than that).
    map_length: int | None = None
    # Issue 6: an asset-triggered run's triggering events (as in ``DagRunQueued``) and,
    # per inlet asset name, its latest events (``context["inlet_events"]``).
    triggering_asset_events: tuple[dict[str, Any], ...] = ()
    inlet_events: dict[str, tuple[dict[str, Any], ...]] = Field(default_factory=dict)
    # The runner protocol's ``max_tries`` for this attempt (ADR 0006): the last try that
    # fails into a retry is ``max_tries - 1``. It counts the tries that do not use up a
    # retry (reschedules, tries before the last clear); None (older schedulers): the
    # executor uses the task's ``retries + 1``.
    max_tries: int | None = Field(default=None, ge=1)


# --------------------------------------------------------------------------- logs
class LogLine(_Payload):
    ts: datetime
    stream: Literal["stdout", "stderr", "system"]
    text: str


class TaskLogChunk(_AttemptRef):
    """An ordered chunk of an attempt's output. ``chunk`` counts from 0 per attempt."""

    type: Literal["TaskLogChunk"] = "TaskLogChunk"
    chunk: int = Field(ge=0)
    lines: tuple[LogLine, ...]


# --------------------------------------------------------------------------- config facts
# On ``<prefix>.config`` (one partition), keyed ``variable:<key>`` /
# ``connection:<conn_id>``; written by the API (ADR 0006). Secret fields hold Fernet
# ciphertext (``LEDGERFLOW_FERNET_KEY``), never plaintext.
class VariableSet(_Payload):
    """A variable was created or replaced. ``value`` is the Fernet ciphertext of its
    string value (JSON values are stored as their JSON text, as Airflow does).
    ``is_secret`` hides the value like a sensitive key does (ledgerflow's addition)."""

    type: Literal["VariableSet"] = "VariableSet"
    key: str = Field(min_length=1)
    value: str
    is_encrypted: bool = True
    description: str | None = None
    is_secret: bool = False
    set_by: str | None = None


class VariableDeleted(_Payload):
    type: Literal["VariableDeleted"] = "VariableDeleted"
    key: str = Field(min_length=1)
    deleted_by: str | None = None


class ConnectionSet(_Payload):
    """A connection was created or replaced. ``password`` and ``extra`` (Airflow's JSON
    text) are Fernet ciphertext or null. ``schema`` keeps Airflow's field name on the
    wire; in Python it is ``schema_`` (``schema`` would shadow pydantic's)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    type: Literal["ConnectionSet"] = "ConnectionSet"
    conn_id: str = Field(min_length=1)
    conn_type: str
    description: str | None = None
    host: str | None = None
    schema_: str | None = Field(default=None, alias="schema")
    login: str | None = None
    password: str | None = None
    port: int | None = None
    extra: str | None = None
    set_by: str | None = None


class ConnectionDeleted(_Payload):
    type: Literal["ConnectionDeleted"] = "ConnectionDeleted"
    conn_id: str = Field(min_length=1)
    deleted_by: str | None = None


class PoolSet(_Payload):
    """A pool was created or changed (key ``pool:<name>``). ``default_pool`` has 128
    slots until set. ``include_deferred`` is kept for Airflow parity (nothing defers)."""

    type: Literal["PoolSet"] = "PoolSet"
    name: str = Field(min_length=1, max_length=256)
    slots: int = Field(ge=-1, description="-1: unlimited (Airflow's convention)")
    description: str | None = None
    include_deferred: bool = False
    set_by: str | None = None


class PoolDeleted(_Payload):
    type: Literal["PoolDeleted"] = "PoolDeleted"
    name: str = Field(min_length=1)
    deleted_by: str | None = None


# --------------------------------------------------------------------------- users and API keys
# Also on ``<prefix>.config``, keyed ``user:<username>`` / ``apikey:<key_id>``; written by
# the API (``/api/v2/users``, ``/api/v2/apiKeys``). Secrets are argon2id hashes (PHC
# strings), never the password or key itself.
Role = Literal["viewer", "user", "op", "admin"]
"""Access roles, weakest first: each role may do everything the one before it may."""

ROLES: tuple[Role, ...] = ("viewer", "user", "op", "admin")


class UserCreated(_Payload):
    """A user account was created. ``password_hash`` is an argon2id hash (null: the user
    cannot log in with a password). ``by`` is who created it."""

    type: Literal["UserCreated"] = "UserCreated"
    username: str = Field(min_length=1)
    role: Role
    password_hash: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    active: bool = True
    by: str | None = None


class UserUpdated(_Payload):
    """A user account changed: the payload is the account's whole new state (so the
    last ``UserCreated``/``UserUpdated`` of a key is the account)."""

    type: Literal["UserUpdated"] = "UserUpdated"
    username: str = Field(min_length=1)
    role: Role
    password_hash: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    active: bool = True
    by: str | None = None


class UserDeleted(_Payload):
    type: Literal["UserDeleted"] = "UserDeleted"
    username: str = Field(min_length=1)
    by: str | None = None


class ApiKeyCreated(_Payload):
    """An API key for an integration. The key itself (``lfk_<key_id>_<secret>``) is
    shown once to its creator; only the argon2id hash of the secret is kept."""

    type: Literal["ApiKeyCreated"] = "ApiKeyCreated"
    key_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    role: Role
    secret_hash: str
    created_by: str | None = None
    expires_at: datetime | None = None


class ApiKeyRevoked(_Payload):
    type: Literal["ApiKeyRevoked"] = "ApiKeyRevoked"
    key_id: str = Field(min_length=1)
    revoked_by: str | None = None


# --------------------------------------------------------------------------- liveness
class ServiceHeartbeat(_Payload):
    """A service instance is alive (``<prefix>.heartbeats``, keyed by instance id, kept
    one day). Schedulers, executors and projectors send one every
    ``LEDGERFLOW_SERVICE_HEARTBEAT_SECONDS``; the API's ``/health`` lists the instances
    heard from recently, which the UI's health indicator shows. Not history: nothing is
    derived from these but "who is alive now"."""

    type: Literal["ServiceHeartbeat"] = "ServiceHeartbeat"
    service: Literal["scheduler", "executor", "projector"]
    instance_id: str = Field(min_length=1)
    hostname: str
    pid: int
    started_at: datetime
    at: datetime
    interval_seconds: float = Field(gt=0)
    details: dict[str, Any] = Field(default_factory=dict)


Payload = Annotated[
    DagVersionPublished
    | DagDeleted
    | DagRunDeleted
    | DagFileImportFailed
    | DagFileImported
    | TriggerDagRun
    | SetDagPaused
    | ClearTaskInstances
    | SetTaskInstanceState
    | SetDagRunState
    | DagPauseChanged
    | DagRunQueued
    | DagRunStarted
    | DagRunSucceeded
    | DagRunFailed
    | TriggerRejected
    | TaskInstanceQueued
    | TaskInstanceUpForRetry
    | TaskInstanceFailed
    | TaskInstanceUpstreamFailed
    | TaskInstanceSkipped
    | TaskInstanceMapExpanded
    | TaskInstanceFailedByScheduler
    | TaskAttemptZombie
    | TaskInstanceCleared
    | TaskInstanceStateSet
    | DagRunStateSet
    | TaskInstanceScheduled
    | PoolSlotsGranted
    | CreateBackfill
    | PauseBackfill
    | UnpauseBackfill
    | CancelBackfill
    | BackfillCreated
    | BackfillRejected
    | BackfillRunReprocessed
    | BackfillPaused
    | BackfillUnpaused
    | BackfillCancelled
    | BackfillCompleted
    | TaskAttemptStarted
    | TaskAttemptSucceeded
    | TaskAttemptFailed
    | TaskAttemptSkipped
    | TaskAttemptRescheduled
    | TaskAttemptHeartbeat
    | AssetEventEmitted
    | ExternalMessageReceived
    | CancelTaskAttempt
    | RunTaskAttempt
    | TaskLogChunk
    | VariableSet
    | VariableDeleted
    | ConnectionSet
    | ConnectionDeleted
    | PoolSet
    | PoolDeleted
    | UserCreated
    | UserUpdated
    | UserDeleted
    | ApiKeyCreated
    | ApiKeyRevoked
    | ServiceHeartbeat,
    Field(discriminator="type"),
]
"""Every payload ledgerflow writes, discriminated by ``type``."""

Command = (
    TriggerDagRun
    | SetDagPaused
    | ClearTaskInstances
    | SetTaskInstanceState
    | SetDagRunState
    | CreateBackfill
    | PauseBackfill
    | UnpauseBackfill
    | CancelBackfill
)
PoolEvent = PoolSet | PoolDeleted
UserEvent = UserCreated | UserUpdated | UserDeleted | ApiKeyCreated | ApiKeyRevoked
ConfigEvent = (
    VariableSet | VariableDeleted | ConnectionSet | ConnectionDeleted | PoolEvent | UserEvent
)
ExecutorReport = (
    TaskAttemptStarted
    | TaskAttemptSucceeded
    | TaskAttemptFailed
    | TaskAttemptSkipped
    | TaskAttemptRescheduled
    | TaskAttemptHeartbeat
)
RunLogEvent = (
    DagPauseChanged
    | DagRunQueued
    | DagRunStarted
    | DagRunSucceeded
    | DagRunFailed
    | TriggerRejected
    | TaskInstanceQueued
    | TaskInstanceUpForRetry
    | TaskInstanceFailed
    | TaskInstanceUpstreamFailed
    | TaskInstanceSkipped
    | TaskInstanceMapExpanded
    | TaskInstanceFailedByScheduler
    | TaskAttemptZombie
    | TaskInstanceCleared
    | TaskInstanceStateSet
    | DagRunStateSet
    | TaskInstanceScheduled
    | PoolSlotsGranted
    | BackfillCreated
    | BackfillRejected
    | BackfillRunReprocessed
    | BackfillPaused
    | BackfillUnpaused
    | BackfillCancelled
    | BackfillCompleted
    | TaskAttemptStarted
    | TaskAttemptSucceeded
    | TaskAttemptFailed
    | TaskAttemptSkipped
    | TaskAttemptRescheduled
    | TaskAttemptHeartbeat
)

PAYLOAD_TYPES: tuple[type[BaseModel], ...] = (
    DagVersionPublished,
    DagDeleted,
    DagRunDeleted,
    DagFileImportFailed,
    DagFileImported,
    TriggerDagRun,
    SetDagPaused,
    ClearTaskInstances,
    SetTaskInstanceState,
    SetDagRunState,
    DagPauseChanged,
    DagRunQueued,
    DagRunStarted,
    DagRunSucceeded,
    DagRunFailed,
    TriggerRejected,
    TaskInstanceQueued,
    TaskInstanceUpForRetry,
    TaskInstanceFailed,
    TaskInstanceUpstreamFailed,
    TaskInstanceSkipped,
    TaskInstanceMapExpanded,
    TaskInstanceFailedByScheduler,
    TaskAttemptZombie,
    TaskInstanceCleared,
    TaskInstanceStateSet,
    DagRunStateSet,
    TaskInstanceScheduled,
    PoolSlotsGranted,
    CreateBackfill,
    PauseBackfill,
    UnpauseBackfill,
    CancelBackfill,
    BackfillCreated,
    BackfillRejected,
    BackfillRunReprocessed,
    BackfillPaused,
    BackfillUnpaused,
    BackfillCancelled,
    BackfillCompleted,
    TaskAttemptStarted,
    TaskAttemptSucceeded,
    TaskAttemptFailed,
    TaskAttemptSkipped,
    TaskAttemptRescheduled,
    TaskAttemptHeartbeat,
    AssetEventEmitted,
    CancelTaskAttempt,
    RunTaskAttempt,
    TaskLogChunk,
    VariableSet,
    VariableDeleted,
    ConnectionSet,
    ConnectionDeleted,
    PoolSet,
    PoolDeleted,
    UserCreated,
    UserUpdated,
    UserDeleted,
    ApiKeyCreated,
    ApiKeyRevoked,
)


class Envelope(BaseModel):
    """One message: CloudEvents attributes, ledgerflow's extensions, and the payload.

    - ``id``: the event id, which is also the idempotency key (deterministic where the
      writer can make it so, see :func:`deterministic_id`).
    - ``aggregate_key``: the Kafka key (the DAG id for DAG, command and run-log topics).
    - ``sequence``: position in the aggregate's stream as numbered by its single writer
      (the scheduler owning the DAG numbers run-log facts; other writers number their
      own messages, e.g. log chunks; 0 where a writer has no order to state).
    - ``time``: when the fact happened, given by the caller (never defaulted here).
    - ``correlation_id``: the run (or request) the message belongs to; ``causation_id``:
      the id of the message that caused this one.
    """

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    specversion: Literal["1.0"] = "1.0"
    id: str
    source: str
    type: str = ""
    time: datetime
    subject: str | None = None
    datacontenttype: Literal["application/json"] = "application/json"
    schema_version: int = Field(default=SCHEMA_VERSION, alias="schemaversion")
    aggregate_key: str = Field(alias="aggregatekey")
    sequence: int = Field(default=0, ge=0)
    correlation_id: str | None = Field(default=None, alias="correlationid")
    causation_id: str | None = Field(default=None, alias="causationid")
    data: Payload

    @field_validator("time")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("time must carry a UTC offset")
        return v

    def model_post_init(self, __context: Any) -> None:
        expected = CLOUDEVENTS_TYPE_PREFIX + self.data.type
        if not self.type:
            object.__setattr__(self, "type", expected)
        elif self.type != expected:
            raise ValueError(f"type {self.type!r} does not match data.type {self.data.type!r}")
        if self.subject is None:
            object.__setattr__(self, "subject", self.aggregate_key)


def make_envelope(
    data: BaseModel,
    *,
    id: str,
    source: str,
    time: datetime,
    aggregate_key: str,
    sequence: int = 0,
    correlation_id: str | None = None,
    causation_id: str | None = None,
) -> Envelope:
    """Wrap a payload in an envelope (keyword-only, so every field is named)."""
    return Envelope(
        id=id,
        source=source,
        time=time,
        aggregate_key=aggregate_key,
        sequence=sequence,
        correlation_id=correlation_id,
        causation_id=causation_id,
        data=data,  # type: ignore[arg-type]
    )


class MalformedMessage(ValueError):
    """A message that cannot be read as an envelope. Not retryable: dead-letter it."""

    retryable = False


_ENVELOPE_ADAPTER: TypeAdapter[Envelope] = TypeAdapter(Envelope)

# Upcasters: one function per version step, applied to the raw dict in order.
# ``UPCASTERS[n]`` turns a version-n document into a version-(n+1) document.
UPCASTERS: dict[int, Any] = {}


def upcast(doc: dict[str, Any]) -> dict[str, Any]:
    """Bring a raw envelope dict up to :data:`SCHEMA_VERSION`."""
    version = doc.get("schemaversion", 1)
    if not isinstance(version, int) or version < 1:
        raise MalformedMessage(f"schemaversion must be a positive integer, got {version!r}")
    if version > SCHEMA_VERSION:
        raise MalformedMessage(
            f"schemaversion {version} is newer than this reader ({SCHEMA_VERSION})"
        )
    while version < SCHEMA_VERSION:
        doc = UPCASTERS[version](doc)
        version += 1
        doc["schemaversion"] = version
    return doc


def encode(envelope: Envelope) -> bytes:
    """Serialize an envelope as a CloudEvents structured-mode JSON document."""
    return envelope.model_dump_json(by_alias=True, exclude_none=True).encode()


def decode(raw: bytes | None) -> Envelope:
    """Parse bytes from a topic. Raises :class:`MalformedMessage` with a readable reason."""
    if raw is None:
        raise MalformedMessage("message has no value")
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedMessage(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise MalformedMessage(f"expected a JSON object, got {type(doc).__name__}")
    doc = upcast(doc)
    try:
        return _ENVELOPE_ADAPTER.validate_python(doc)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()
        )
        raise MalformedMessage(f"invalid envelope: {problems}") from None


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the envelope (with the payload union), as published in docs/."""
    return _ENVELOPE_ADAPTER.json_schema(by_alias=True, mode="serialization")
