"""State of a DAG and its runs, as folded from the run log. Frozen values only.

The fold is idempotent by construction: each transition is guarded by the current state
and the attempt number, so a redelivered or replayed event changes nothing (HOUSE_STYLE
§2; stale reports are dropped by ``try_number`` as Airflow does).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

TaskState = Literal[
    "queued",
    "running",
    "success",
    "failed",
    "upstream_failed",
    "skipped",
    "up_for_retry",
    # Internal: an attempt's failure was reported and the scheduler has not yet decided
    # between up_for_retry and failed. Never shown to users (the projector keeps the
    # previous Airflow state until the decision lands).
    "attempt_failed",
]
RunStateName = Literal["queued", "running", "success", "failed"]

FINISHED_TASK_STATES: frozenset[str] = frozenset(
    {"success", "failed", "upstream_failed", "skipped"}
)
FINISHED_RUN_STATES: frozenset[str] = frozenset({"success", "failed"})


@dataclass(frozen=True, slots=True)
class TaskInstance:
    """One task instance of a run. ``try_number`` is the latest attempt queued (0 = none)."""

    task_id: str
    map_index: int = -1
    state: TaskState | None = None
    try_number: int = 0
    queued_when: datetime | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    retry_at: datetime | None = None
    retryable: bool = True
    return_value: Any = None
    hostname: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_TASK_STATES


@dataclass(frozen=True, slots=True)
class Run:
    """One DAG run. It keeps the DAG version it was queued with for its whole life."""

    dag_id: str
    run_id: str
    version_id: str
    state: RunStateName
    run_type: str
    queued_at: datetime
    command_id: str | None = None
    conf: Mapping[str, Any] = field(default_factory=dict)
    logical_date: datetime | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    tasks: Mapping[str, TaskInstance] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_RUN_STATES

    def with_task(self, ti: TaskInstance) -> Run:
        tasks = dict(self.tasks)
        tasks[ti.task_id] = ti
        return replace(self, tasks=tasks)


@dataclass(frozen=True, slots=True)
class DagState:
    """Everything the scheduler knows about one DAG: pause flag and runs.

    ``sequence`` is the highest run-log sequence number the scheduler has written for
    this DAG; new facts continue from it.
    """

    dag_id: str
    is_paused: bool | None = None
    runs: Mapping[str, Run] = field(default_factory=dict)
    sequence: int = 0

    def with_run(self, run: Run) -> DagState:
        runs = dict(self.runs)
        runs[run.run_id] = run
        return replace(self, runs=runs)


def empty(dag_id: str) -> DagState:
    """The state of a DAG nothing has happened to."""
    return DagState(dag_id=dag_id)
