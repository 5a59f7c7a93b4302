"""Executor reports, cancels, work items and task logs.

Part of :mod:`ledgerflow.common.events` (import from there). Only pydantic and the
standard library.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from ledgerflow.common.events._base import _AttemptRef, _Payload
from ledgerflow.common.events.assets import AssetEventReport
from pydantic import Field


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
