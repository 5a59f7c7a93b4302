"""State of a DAG and its runs, as folded from the run log. Frozen values only.

The fold is idempotent by construction: each transition is guarded by the current state
and the attempt number, so a redelivered or replayed event changes nothing (HOUSE_STYLE
§2; stale reports are dropped by ``try_number`` as Airflow does).

Task instances are keyed by ``(task_id, map_index)`` (ADR 0006); an unmapped task has map
index -1, and so has a mapped task's placeholder until it is expanded. Besides the task
instances a run keeps a few indexes that the fold maintains and ``decide`` reads instead of
scanning every task instance on every event: finished counts per task (what trigger rules
count), the number of finished instances (when is the run done) and the instances waiting
on a timer (retries and reschedules).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeVar

if TYPE_CHECKING:
    from ledgerflow.common.core.backfill_state import Backfill
    from ledgerflow.common.events import Envelope

TaskState = Literal[
    "scheduled",  # ready, waiting for the pool arbiter's grant (ADR 0011)
    "queued",
    "running",
    "success",
    "failed",
    "upstream_failed",
    "skipped",
    "up_for_retry",
    "up_for_reschedule",
    # Internal: an attempt's failure was reported and the scheduler has not yet decided
    # between up_for_retry and failed. Never shown to users (the projector keeps the
    # previous Airflow state until the decision lands).
    "attempt_failed",
]
RunStateName = Literal["queued", "running", "success", "failed"]

FINISHED_TASK_STATES: frozenset[str] = frozenset(
    {"success", "failed", "upstream_failed", "skipped"}
)
TIMER_TASK_STATES: frozenset[str] = frozenset({"up_for_retry", "up_for_reschedule"})
FINISHED_RUN_STATES: frozenset[str] = frozenset({"success", "failed"})

TIKey = tuple[str, int]
"""A task instance's key within its run: ``(task_id, map_index)``."""

XCOM_RETURN_KEY = "return_value"


class StateCounts(NamedTuple):
    """How many of one task's instances in a run finished in each state."""

    success: int = 0
    skipped: int = 0
    failed: int = 0
    upstream_failed: int = 0

    @property
    def done(self) -> int:
        return self.success + self.skipped + self.failed + self.upstream_failed

    def add(self, state: str | None, delta: int) -> StateCounts:
        if state not in FINISHED_TASK_STATES:
            return self
        index = _COUNT_INDEX[state]
        values = list(self)
        values[index] += delta
        return StateCounts(*values)


_COUNT_INDEX = {"success": 0, "skipped": 1, "failed": 2, "upstream_failed": 3}
NO_COUNTS = StateCounts()

_T = TypeVar("_T")


def updated(obj: _T, **changes: Any) -> _T:
    """``dataclasses.replace`` for the frozen slots dataclasses of this module, without
    its per-call introspection (the fold runs this for every event; it is a third of
    the time ``decide`` takes on a wide fan-out). No ``__post_init__`` is involved."""
    cls = type(obj)
    new = object.__new__(cls)
    for name in cls.__slots__:  # type: ignore[attr-defined]
        object.__setattr__(new, name, changes.pop(name) if name in changes else getattr(obj, name))
    if changes:
        raise TypeError(f"{cls.__name__} has no field(s) {', '.join(changes)}")
    return new


@dataclass(frozen=True, slots=True)
class TaskInstance:
    """One task instance of a run.

    ``try_number`` is the latest attempt queued (0 = none); ``reschedules`` counts the
    attempts that ended in a reschedule, which do not use up a retry (ADR 0006), so the
    attempts that count against ``retries`` are ``try_number - reschedules``.
    ``first_poke_at`` is when the first attempt since the last retry started: a
    reschedule-mode sensor times out measured from it. ``reason`` says why the scheduler
    (not an attempt) finished the instance, when it did.
    """

    task_id: str
    map_index: int = -1
    state: TaskState | None = None
    try_number: int = 0
    reschedules: int = 0
    queued_when: datetime | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    retry_at: datetime | None = None
    reschedule_at: datetime | None = None
    first_poke_at: datetime | None = None
    retryable: bool = True
    return_value: Any = None
    xcoms: Mapping[str, Any] = field(default_factory=dict)
    follow_task_ids: tuple[str, ...] | None = None
    short_circuit: Literal["direct", "all"] | None = None
    hostname: str | None = None
    reason: str | None = None
    # Liveness (issue 4): who runs the attempt and when it last said so.
    executor_id: str | None = None
    heartbeat_at: datetime | None = None
    # ``try_number`` when the instance was last cleared: tries before it do not count
    # against ``retries`` (Airflow gives a cleared instance its retries again).
    retry_base: int = 0
    # The pool arbiter granted the scheduled attempt (``try_number + 1``) its slots.
    granted: bool = False

    @property
    def key(self) -> TIKey:
        return (self.task_id, self.map_index)

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_TASK_STATES

    @property
    def last_seen(self) -> datetime | None:
        """The last sign of life of a running attempt: its latest heartbeat or start."""
        return self.heartbeat_at or self.start_date

    @property
    def attempts(self) -> int:
        """Attempts that count against ``retries`` (reschedules and tries before the
        last clear do not)."""
        return self.try_number - self.reschedules - self.retry_base

    def xcom(self, key: str) -> Any:
        """The value this instance pushed under ``key`` (None if it pushed none)."""
        if key == XCOM_RETURN_KEY and self.return_value is not None:
            return self.return_value
        return self.xcoms.get(key)


@dataclass(frozen=True, slots=True)
class Run:
    """One DAG run. It keeps the DAG version it was queued with for its whole life.

    ``tasks`` holds the instances something has happened to; an absent key is an
    instance in state None. ``map_lengths`` records expanded mapped tasks; once a task
    has ``n > 0`` indexes its placeholder (map index -1) is gone, with ``n == 0`` the
    placeholder stays (and is skipped).
    """

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
    tasks: Mapping[TIKey, TaskInstance] = field(default_factory=dict)
    map_lengths: Mapping[str, int] = field(default_factory=dict)
    counts: Mapping[str, StateCounts] = field(default_factory=dict)
    totals: StateCounts = NO_COUNTS
    finished_instances: int = 0
    timers: frozenset[TIKey] = frozenset()
    # Running instances and their last sign of life (the zombie detector's index).
    beats: Mapping[TIKey, datetime] = field(default_factory=dict)
    # Ids of the user commands (clear, mark) that changed this run: a redelivered
    # command finds itself here and does nothing.
    commands: frozenset[str] = frozenset()
    # An asset-triggered run's triggering events (ADR 0013; ``core/assets.py``).
    triggering_asset_events: tuple[Mapping[str, Any], ...] = ()

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_RUN_STATES

    @property
    def order_key(self) -> tuple[datetime, datetime, str]:
        """Runs are ordered by logical date, then queue time (``depends_on_past``)."""
        return (self.logical_date or self.queued_at, self.queued_at, self.run_id)

    def ti(self, task_id: str, map_index: int = -1) -> TaskInstance:
        """The instance (a fresh one in state None if nothing happened to it yet)."""
        found = self.tasks.get((task_id, map_index))
        return found if found is not None else TaskInstance(task_id, map_index)

    def instance_count(self, task_id: str) -> int:
        """How many instances a task has: its map length once expanded (at least the
        placeholder), otherwise one."""
        n = self.map_lengths.get(task_id)
        return n if n else 1

    def map_indexes(self, task_id: str) -> range:
        """The map indexes of a task's instances (``range(-1, 0)`` until expanded)."""
        n = self.map_lengths.get(task_id)
        return range(n) if n else range(-1, 0)

    def with_task(self, ti: TaskInstance) -> Run:
        """Replace one task instance, keeping the indexes in step."""
        old = self.tasks.get(ti.key)
        old_state = old.state if old is not None else None
        tasks = dict(self.tasks)
        tasks[ti.key] = ti
        changes: dict[str, Any] = {"tasks": tasks}
        if old_state != ti.state:
            was_done = old_state in FINISHED_TASK_STATES
            is_done = ti.state in FINISHED_TASK_STATES
            if was_done or is_done:
                counts = dict(self.counts)
                c = counts.get(ti.task_id, NO_COUNTS).add(old_state, -1).add(ti.state, 1)
                counts[ti.task_id] = c
                changes["counts"] = counts
                changes["totals"] = self.totals.add(old_state, -1).add(ti.state, 1)
                changes["finished_instances"] = self.finished_instances + is_done - was_done
            if (old_state in TIMER_TASK_STATES) != (ti.state in TIMER_TASK_STATES):
                changes["timers"] = (
                    self.timers | {ti.key}
                    if ti.state in TIMER_TASK_STATES
                    else self.timers - {ti.key}
                )
        seen = ti.last_seen if ti.state == "running" else None
        if self.beats.get(ti.key) != seen:
            beats = dict(self.beats)
            if seen is None:
                del beats[ti.key]
            else:
                beats[ti.key] = seen
            changes["beats"] = beats
        return updated(self, **changes)

    def with_map_length(self, task_id: str, length: int) -> Run:
        lengths = dict(self.map_lengths)
        lengths[task_id] = length
        tasks = self.tasks
        if length > 0 and (task_id, -1) in tasks:
            tasks = dict(tasks)
            del tasks[(task_id, -1)]
        return updated(self, map_lengths=lengths, tasks=tasks)


@dataclass(frozen=True, slots=True)
class ScheduledInterval:
    """The latest run the timetable created (Airflow's "last automated run"): where the
    schedule goes on from. Folded from ``DagRunQueued`` with ``run_type="scheduled"``."""

    logical_date: datetime
    run_after: datetime
    data_interval_start: datetime
    data_interval_end: datetime


@dataclass(frozen=True, slots=True)
class DagState:
    """Everything the scheduler knows about one DAG: pause flag and runs.

    ``sequence`` is the highest run-log sequence number the scheduler has written for
    this DAG; new facts continue from it. ``active`` holds the ids of unfinished runs,
    so deciding never walks the DAG's whole history.
    """

    dag_id: str
    is_paused: bool | None = None
    runs: Mapping[str, Run] = field(default_factory=dict)
    sequence: int = 0
    active: frozenset[str] = frozenset()
    # The latest scheduled run (issue 6): the timetable's next run follows it.
    last_scheduled: ScheduledInterval | None = None
    # Backfills by id (issue 6; :mod:`ledgerflow.common.core.backfill_state`).
    backfills: Mapping[int, Backfill] = field(default_factory=dict)
    # Kafka-triggered runs (ADR 0014, ``core/messages.py``): the next offset to read per
    # (asset, watcher, topic, partition), the recorded messages whose run is not created
    # yet (by run id), and when the DAG was last unpaused.
    watch_offsets: Mapping[tuple[str, str, str, int], int] = field(default_factory=dict)
    pending_messages: Mapping[str, Envelope] = field(default_factory=dict)
    unpaused_at: datetime | None = None

    def with_run(self, run: Run) -> DagState:
        runs = dict(self.runs)
        runs[run.run_id] = run
        active = self.active
        if run.finished and run.run_id in active:
            active = active - {run.run_id}
        elif not run.finished and run.run_id not in active:
            active = active | {run.run_id}
        return updated(self, runs=runs, active=active)


def empty(dag_id: str) -> DagState:
    """The state of a DAG nothing has happened to."""
    return DagState(dag_id=dag_id)
