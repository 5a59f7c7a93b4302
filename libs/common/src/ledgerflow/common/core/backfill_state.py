"""Backfills as folded from the run log, and the plan of a backfill (pure, no I/O).

A backfill (Airflow 3's ``Backfill``) lives in its DAG's state
(:attr:`~ledgerflow.common.core.state.DagState.backfills`): ``BackfillCreated`` brings
it with its plan (every logical date in run order and what happens to it), the pause,
unpause, cancel and completion facts change its flags. Which of its runs exist, and
whether they finished, is read from the DAG's runs, so nothing here duplicates them.

:func:`plan` is shared by the scheduler (which decides) and the API (dry run), so both
resolve a request to the same logical dates with the same rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from ledgerflow.common.core.state import updated
from ledgerflow.common.dagmodel import SerializedDag
from ledgerflow.common.events import (
    BackfillCancelled,
    BackfillCompleted,
    BackfillCreated,
    BackfillPaused,
    BackfillRunPlan,
    BackfillRunReprocessed,
    BackfillUnpaused,
    Envelope,
)

if TYPE_CHECKING:
    from ledgerflow.common.core.state import DagState

BACKFILL_FACTS = (
    BackfillCreated,
    BackfillPaused,
    BackfillUnpaused,
    BackfillCancelled,
    BackfillCompleted,
    BackfillRunReprocessed,
)

# Airflow's ``BackfillDagRunExceptionReason``.
IN_FLIGHT = "in flight"
ALREADY_EXISTS = "already exists"

# The most logical dates one backfill may cover (its plan travels in one event).
MAX_BACKFILL_RUNS = 10_000

# Schedules a backfill makes no sense for (Airflow's ``DagNonPeriodicScheduleException``).
NON_PERIODIC_KINDS = frozenset({"once", "continuous", "asset"})


@dataclass(frozen=True, slots=True)
class Backfill:
    """One backfill of a DAG. ``reprocessed``: the runs it re-runs (announced by
    ``BackfillRunReprocessed``); ``commands``: the pause/unpause/cancel commands applied,
    so a redelivered one does nothing."""

    backfill_id: int
    dag_id: str
    from_date: datetime
    to_date: datetime
    run_backwards: bool
    dag_run_conf: Mapping[str, Any]
    reprocess_behavior: str
    max_active_runs: int
    created_by: str | None
    created_at: datetime
    runs: tuple[BackfillRunPlan, ...]
    is_paused: bool = False
    cancelled: bool = False
    completed_at: datetime | None = None
    reprocessed: frozenset[str] = frozenset()
    commands: frozenset[str] = field(default_factory=frozenset)

    @property
    def active(self) -> bool:
        return self.completed_at is None


def fold_backfill(state: DagState, event: Envelope) -> DagState:
    """Apply one backfill fact (idempotent: each change is guarded by the current flags)."""
    data = event.data
    if isinstance(data, BackfillCreated):
        if data.backfill_id in state.backfills:
            return state
        backfill = Backfill(
            backfill_id=data.backfill_id,
            dag_id=data.dag_id,
            from_date=data.from_date,
            to_date=data.to_date,
            run_backwards=data.run_backwards,
            dag_run_conf=dict(data.dag_run_conf),
            reprocess_behavior=data.reprocess_behavior,
            max_active_runs=data.max_active_runs,
            created_by=data.created_by,
            created_at=data.created_at,
            runs=data.runs,
        )
        return _with_backfill(state, backfill)
    backfill_id = getattr(data, "backfill_id", None)
    b = state.backfills.get(backfill_id) if isinstance(backfill_id, int) else None
    if b is None:
        return state
    changes: dict[str, Any] = {}
    if isinstance(data, BackfillPaused) and not b.is_paused:
        changes["is_paused"] = True
    elif isinstance(data, BackfillUnpaused) and b.is_paused and not b.cancelled:
        changes["is_paused"] = False
    elif isinstance(data, BackfillCancelled) and not b.cancelled:
        changes.update(cancelled=True, is_paused=True)
    elif isinstance(data, BackfillCompleted) and b.completed_at is None:
        changes["completed_at"] = data.at
    elif isinstance(data, BackfillRunReprocessed) and data.run_id not in b.reprocessed:
        changes["reprocessed"] = b.reprocessed | {data.run_id}
        run = state.runs.get(data.run_id)
        if run is not None and run.run_type != "backfill":
            state = state.with_run(updated(run, run_type="backfill"))
    if event.causation_id and isinstance(
        data, BackfillPaused | BackfillUnpaused | BackfillCancelled
    ):
        changes["commands"] = b.commands | {event.causation_id}
    if not changes:
        return state
    return _with_backfill(state, updated(b, **changes))


def _with_backfill(state: DagState, backfill: Backfill) -> DagState:
    backfills = dict(state.backfills)
    backfills[backfill.backfill_id] = backfill
    return updated(state, backfills=backfills)


def active_backfill(state: DagState) -> Backfill | None:
    """The DAG's active backfill (Airflow allows one at a time)."""
    for backfill_id in sorted(state.backfills):
        b = state.backfills[backfill_id]
        if b.active:
            return b
    return None


# --------------------------------------------------------------------------- planning
class RunInfo(Protocol):
    """What :func:`plan` needs of a timetable's ``DagRunInfo``."""

    @property
    def logical_date(self) -> datetime: ...

    @property
    def run_after(self) -> datetime: ...

    @property
    def data_interval(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class ExistingRun:
    """The latest run at a logical date, as far as planning cares."""

    run_id: str
    state: str


def backfill_problem(
    dag: SerializedDag,
    *,
    from_date: datetime,
    to_date: datetime,
    run_backwards: bool,
    reprocess_behavior: str,
    now: datetime,
) -> tuple[str, str] | None:
    """Why Airflow would refuse this backfill (``_validate_backfill_params`` and the
    periodic-schedule check): the request field at fault and the message; or None."""
    if from_date > to_date:
        return "from_date", (
            f"from_date ({from_date.isoformat()}) must not be after to_date "
            f"({to_date.isoformat()})."
        )
    if from_date >= now and to_date >= now:
        return "from_date", "Backfill cannot be executed for future dates."
    spec = dag.timetable
    if spec is None or spec.kind in NON_PERIODIC_KINDS:
        return "dag_id", (
            f"{dag.dag_id} has a non-periodic schedule that does not support backfills"
        )
    if any(t.depends_on_past for t in dag.tasks):
        if run_backwards:
            return "run_backwards", (
                "Backfill cannot be run in reverse when the DAG has tasks where "
                "depends_on_past=True."
            )
        if reprocess_behavior == "none":
            return "reprocess_behavior", (
                "DAG has tasks for which depends_on_past=True. You must set reprocess "
                "behavior to reprocess completed or reprocess failed."
            )
    return None


def no_create_reason(existing: ExistingRun, reprocess_behavior: str) -> str | None:
    """Airflow's ``_get_dag_run_no_create_reason``: why an existing run is left alone."""
    if existing.state not in ("success", "failed"):
        return IN_FLIGHT
    if reprocess_behavior == "none":
        return ALREADY_EXISTS
    if reprocess_behavior == "failed" and existing.state != "failed":
        return ALREADY_EXISTS
    return None


def plan(
    infos: Iterable[RunInfo],
    existing: Mapping[datetime, ExistingRun],
    *,
    reprocess_behavior: str,
    run_backwards: bool,
    now: datetime,
    run_id_for: Any,
) -> tuple[BackfillRunPlan, ...]:
    """The backfill's logical dates in run order with what happens to each.

    ``infos``: the timetable's runs in ``[from_date, to_date]`` (ascending); only those
    whose data interval has ended are kept (Airflow's ``_get_info_list``).
    ``existing``: the latest run at each logical date. ``run_id_for(run_type, date)``
    names a new run."""
    kept = [i for i in infos if _interval_end(i) < now]
    if run_backwards:
        kept.reverse()
    out: list[BackfillRunPlan] = []
    for n, info in enumerate(kept, start=1):
        start, end = _interval(info)
        common = {
            "sort_ordinal": n,
            "logical_date": info.logical_date,
            "data_interval_start": start,
            "data_interval_end": end,
            "run_after": info.run_after,
        }
        found = existing.get(info.logical_date)
        if found is None:
            item = BackfillRunPlan(
                action="create", run_id=run_id_for("backfill", info.logical_date), **common
            )
        elif (reason := no_create_reason(found, reprocess_behavior)) is not None:
            item = BackfillRunPlan(
                action="skip", run_id=found.run_id, exception_reason=reason, **common
            )
        else:
            item = BackfillRunPlan(action="rerun", run_id=found.run_id, **common)
        out.append(item)
    return tuple(out)


def plan_problem(dag_id: str, items: tuple[BackfillRunPlan, ...]) -> str | None:
    """Why a resolved plan cannot be a backfill (nothing to run, or too much), or None."""
    if not items:
        return f"No runs to create for Dag {dag_id}"
    if len(items) > MAX_BACKFILL_RUNS:
        return (
            f"The range covers {len(items)} or more runs of Dag {dag_id}; a backfill may "
            f"cover at most {MAX_BACKFILL_RUNS}: narrow from_date/to_date"
        )
    return None


def existing_runs(state: DagState) -> dict[datetime, ExistingRun]:
    """The latest run at each logical date of the DAG (by start, then queue time)."""
    best: dict[datetime, tuple[tuple[datetime, datetime], ExistingRun]] = {}
    for run in state.runs.values():
        if run.logical_date is None:
            continue
        rank = (run.start_date or run.queued_at, run.queued_at)
        current = best.get(run.logical_date)
        if current is None or rank > current[0]:
            best[run.logical_date] = (rank, ExistingRun(run.run_id, run.state))
    return {date: found for date, (_, found) in best.items()}


def _interval(info: RunInfo) -> tuple[datetime | None, datetime | None]:
    interval = info.data_interval
    if interval is None:
        return None, None
    return interval.start, interval.end


def _interval_end(info: RunInfo) -> datetime:
    _, end = _interval(info)
    return end if end is not None else info.logical_date
