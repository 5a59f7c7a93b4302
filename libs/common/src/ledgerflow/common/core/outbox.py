"""The working memory of one ``decide`` call.

It emits events (folding each into the state at once, so the next decision sees it) and
keeps the *dirty set*: what an event can have changed the outcome of. ``decide`` then
looks only at that, instead of every task of every run (ADR 0006, performance):

- ``own``: task instances whose own state needs a decision (a failed attempt, a retry
  or reschedule coming due, a branch that succeeded);
- ``finished``: tasks one of whose instances just finished, so their downstreams (and
  the tasks they are an indirect setup of, and ``depends_on_past`` tasks of later runs)
  must look at their trigger rules again;
- ``deps``: tasks whose trigger rule must be evaluated;
- ``full``: runs to look at from scratch (a run that just started; recovery);
- ``finish``: runs that may be done; ``start``: whether queued runs may start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from ledgerflow.common.core.evolve import SCHEDULER_SOURCE, evolve
from ledgerflow.common.core.state import DagState, Run, TaskInstance, TIKey
from ledgerflow.common.core.work import Catalog
from ledgerflow.common.events import (
    CancelTaskAttempt,
    DagPauseChanged,
    DagRunFailed,
    DagRunQueued,
    DagRunStarted,
    DagRunStateSet,
    DagRunSucceeded,
    Envelope,
    TaskInstanceMapExpanded,
    XComEntry,
    deterministic_id,
    make_envelope,
)
from pydantic import BaseModel


@dataclass
class Outbox:
    """Accumulates emitted events and work items, folding each event as it goes."""

    state: DagState
    now: datetime
    catalog: Catalog
    cause: Envelope | None
    zombie_timeout: timedelta = timedelta(seconds=30)
    pools: bool = False
    events: list[Envelope] = field(default_factory=list)
    work: list[Envelope] = field(default_factory=list)
    control: list[Envelope] = field(default_factory=list)
    own: dict[str, dict[TIKey, None]] = field(default_factory=dict)
    finished: dict[str, dict[str, None]] = field(default_factory=dict)
    deps: dict[str, dict[str, None]] = field(default_factory=dict)
    full: dict[str, None] = field(default_factory=dict)
    finish: dict[str, None] = field(default_factory=dict)
    start: bool = False
    xcom_cache: dict[tuple[str, str], tuple[XComEntry, ...]] = field(default_factory=dict)
    previous_runs: dict[str, Run | None] = field(default_factory=dict)

    def emit(
        self, data: BaseModel, *, key: tuple[object, ...], correlation_id: str | None
    ) -> Envelope:
        env = make_envelope(
            data,
            id=deterministic_id(*key),
            source=SCHEDULER_SOURCE,
            time=self.now,
            aggregate_key=self.state.dag_id,
            sequence=self.state.sequence + 1,
            correlation_id=correlation_id,
            causation_id=self.cause.id if self.cause else None,
        )
        self.events.append(env)
        self.apply(env)
        return env

    def cancel(self, run: Run, ti: TaskInstance, *, state: str, reason: str) -> None:
        """Ask every executor to kill ``ti``'s current attempt, if one may be running
        (sent on the control topic after the events that decided it)."""
        if ti.try_number < 1 or ti.state not in ("queued", "running"):
            return
        attempt = (run.dag_id, run.run_id, ti.task_id, ti.map_index, ti.try_number)
        self.control.append(
            make_envelope(
                CancelTaskAttempt(
                    dag_id=run.dag_id,
                    run_id=run.run_id,
                    task_id=ti.task_id,
                    map_index=ti.map_index,
                    try_number=ti.try_number,
                    reason=reason,
                    state=state,
                ),
                id=deterministic_id("CancelTaskAttempt", *attempt),
                source=SCHEDULER_SOURCE,
                time=self.now,
                aggregate_key=run.dag_id,
                correlation_id=run.run_id,
                causation_id=self.cause.id if self.cause else None,
            )
        )

    def apply(self, env: Envelope) -> None:
        """Fold ``env`` and mark what it may have changed."""
        before = self.state
        self.state = evolve(before, env)
        data = env.data
        run_id: str | None = getattr(data, "run_id", None)
        if run_id is None:
            if isinstance(data, DagPauseChanged):
                self.start = True
            return
        old_run = before.runs.get(run_id)
        new_run = self.state.runs.get(run_id)
        if new_run is None or new_run is old_run:
            return  # nothing changed: a redelivery, a stale report
        if isinstance(data, DagRunQueued | DagRunSucceeded | DagRunFailed | DagRunStateSet):
            self.start = True
            return
        if isinstance(data, DagRunStarted):
            self.mark_full(run_id)
            return
        task_id: str | None = getattr(data, "task_id", None)
        if task_id is None or old_run is None:
            return
        self.finish[run_id] = None
        if isinstance(data, TaskInstanceMapExpanded):
            self.deps.setdefault(run_id, {})[task_id] = None
            self.finished.setdefault(run_id, {})[task_id] = None  # instance count changed
            return
        key = (task_id, getattr(data, "map_index", -1))
        self.own.setdefault(run_id, {})[key] = None
        old_ti = old_run.tasks.get(key)
        new_ti = new_run.tasks.get(key)
        if new_ti is not None and new_ti.finished and not (old_ti is not None and old_ti.finished):
            self.finished.setdefault(run_id, {})[task_id] = None

    def mark_full(self, run_id: str) -> None:
        self.full[run_id] = None
        self.finish[run_id] = None

    def mark_own(self, run_id: str, key: TIKey) -> None:
        self.own.setdefault(run_id, {})[key] = None

    def mark_deps(self, run_id: str, task_id: str) -> None:
        self.deps.setdefault(run_id, {})[task_id] = None

    def busy_run(self) -> str | None:
        """A run with something left to look at (in a stable order)."""
        if self.full:
            return next(iter(self.full))
        for queue in (self.own, self.finished, self.deps):
            for run_id, items in queue.items():
                if items:
                    return run_id
        return None


T = TypeVar("T")


def pop_first(items: dict[T, None]) -> T:
    """Take the oldest entry of an insertion-ordered set."""
    first = next(iter(items))
    del items[first]
    return first
