"""Data-aware scheduling (ADR 0013), pure: which asset events a success publishes, and
when an asset-scheduled DAG gets a run.

- :func:`emitted_for_success`: the ``AssetEventEmitted`` facts of a task attempt's
  success, with ids from the attempt and the asset, so deciding them again (a replay, a
  redelivered report) yields the same ids.
- :class:`AssetBook`: the asset events read from the single-partition assets topic, in
  offset order (``position``), duplicates (same id) dropped. Every scheduler instance
  reads the whole topic, so every instance holds the same book for the same prefix.
- :func:`due_asset_run`: Airflow's "the DAG's asset condition holds over the asset
  events since its previous asset-triggered run". What "since" means is derived from
  the DAG's runs (the highest position among the previous asset-triggered runs'
  triggering events), so a restarted scheduler finds it in the run log.

Imports only the standard library, events, dagmodel and the core's state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ledgerflow.common.core.evolve import SCHEDULER_SOURCE
from ledgerflow.common.core.state import DagState, Run
from ledgerflow.common.dagmodel import AssetCondition, SerializedDag
from ledgerflow.common.events import (
    AssetEventEmitted,
    Envelope,
    TaskAttemptSucceeded,
    TriggerDagRun,
    deterministic_id,
    make_envelope,
)

ASSET_TRIGGER_SOURCE = "ledgerflow/scheduler/assets"
ASSET_TIMETABLE_KINDS = frozenset({"asset", "asset_or_time"})


# --------------------------------------------------------------------------- producing
def asset_event_id(
    dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int, name: str
) -> str:
    return str(
        deterministic_id("AssetEventEmitted", dag_id, run_id, task_id, map_index, try_number, name)
    )


def emitted_for_success(state: DagState, report: Envelope) -> list[Envelope]:
    """The asset events of a success report, if the fold accepted it (``state`` is the
    state after folding ``report``): a stale or repeated report about another attempt
    publishes nothing."""
    data = report.data
    if not isinstance(data, TaskAttemptSucceeded) or not data.asset_events:
        return []
    run = state.runs.get(data.run_id)
    ti = run.tasks.get((data.task_id, data.map_index)) if run is not None else None
    if ti is None or ti.state != "success" or ti.try_number != data.try_number:
        return []
    out: list[Envelope] = []
    seen: set[str] = set()
    for a in data.asset_events:
        if a.name in seen:
            continue
        seen.add(a.name)
        out.append(
            make_envelope(
                AssetEventEmitted(
                    name=a.name,
                    uri=a.uri,
                    group=a.group,
                    extra=dict(a.extra),
                    source_aliases=a.source_aliases,
                    source_dag_id=data.dag_id,
                    source_run_id=data.run_id,
                    source_task_id=data.task_id,
                    source_map_index=data.map_index,
                    source_try_number=data.try_number,
                    timestamp=data.end_date,
                ),
                id=asset_event_id(
                    data.dag_id, data.run_id, data.task_id, data.map_index, data.try_number, a.name
                ),
                source=SCHEDULER_SOURCE,
                time=data.end_date,
                aggregate_key=a.name,
                correlation_id=data.run_id,
                causation_id=report.id,
            )
        )
    return out


# --------------------------------------------------------------------------- the book
@dataclass(frozen=True)
class BookedEvent:
    """An asset event and its position (offset) on the assets topic."""

    position: int
    event_id: str
    event: AssetEventEmitted

    def as_dict(self) -> dict[str, Any]:
        """The JSON form carried in ``triggering_asset_events`` and work items."""
        e = self.event
        return {
            "id": self.event_id,
            "position": self.position,
            "name": e.name,
            "uri": e.uri,
            "group": e.group,
            "extra": dict(e.extra),
            "source_aliases": list(e.source_aliases),
            "source_dag_id": e.source_dag_id,
            "source_run_id": e.source_run_id,
            "source_task_id": e.source_task_id,
            "source_map_index": e.source_map_index,
            "timestamp": e.timestamp.isoformat(),
        }


@dataclass
class AssetBook:
    """The asset events in topic order. Mutable, no I/O (like the pool book)."""

    events: list[BookedEvent] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    by_name: dict[str, list[BookedEvent]] = field(default_factory=dict)
    # alias name -> names of the assets events were emitted for through it
    alias_assets: dict[str, set[str]] = field(default_factory=dict)

    def add(self, position: int, env: Envelope) -> BookedEvent | None:
        """Record one message read at ``position``; None for a duplicate or another type."""
        if not isinstance(env.data, AssetEventEmitted) or env.id in self.ids:
            return None
        booked = BookedEvent(position=position, event_id=env.id, event=env.data)
        self.ids.add(env.id)
        self.events.append(booked)
        self.by_name.setdefault(env.data.name, []).append(booked)
        for alias in env.data.source_aliases:
            self.alias_assets.setdefault(alias, set()).add(env.data.name)
        return booked

    def __contains__(self, event_id: object) -> bool:
        return event_id in self.ids

    def latest(self, name: str, limit: int = 100) -> list[BookedEvent]:
        """The last ``limit`` events of one asset, oldest first."""
        return self.by_name.get(name, [])[-limit:]


# --------------------------------------------------------------------------- conditions
def condition_leaves(cond: AssetCondition) -> tuple[set[str], set[str]]:
    """The asset names and alias names a condition mentions."""
    assets: set[str] = set()
    aliases: set[str] = set()
    stack = [cond]
    while stack:
        c = stack.pop()
        if c.op == "asset" and c.asset is not None:
            assets.add(c.asset.name)
        elif c.op == "alias" and c.asset is not None:
            aliases.add(c.asset.name)
        stack.extend(c.children)
    return assets, aliases


def evaluate(
    cond: AssetCondition,
    updated: set[str],
    alias_hits: set[str],
    alias_assets: Mapping[str, set[str]] | None = None,
) -> bool:
    """Does the condition hold when the assets ``updated`` have new events and events
    came through the aliases ``alias_hits``? An alias also holds when an asset it has
    resolved to (``alias_assets``) is updated. ``all`` of nothing never holds."""
    if cond.op == "asset":
        return cond.asset is not None and cond.asset.name in updated
    if cond.op == "alias":
        if cond.asset is None:
            return False
        resolved = (alias_assets or {}).get(cond.asset.name, set())
        return cond.asset.name in alias_hits or bool(resolved & updated)
    results = [evaluate(c, updated, alias_hits, alias_assets) for c in cond.children]
    if cond.op == "all":
        return bool(results) and all(results)
    return any(results)


def watermark(runs: Iterable[Run]) -> int:
    """The highest book position any previous asset-triggered run consumed (-1: none)."""
    mark = -1
    for run in runs:
        if run.run_type != "asset_triggered":
            continue
        for e in run.triggering_asset_events:
            pos = e.get("position")
            if isinstance(pos, int) and pos > mark:
                mark = pos
    return mark


@dataclass(frozen=True)
class AssetTrigger:
    """An asset-triggered run that is due: its id and triggering events."""

    dag_id: str
    run_id: str
    events: tuple[dict[str, Any], ...]

    def command(self, *, now: datetime) -> Envelope:
        """The ``TriggerDagRun`` the scheduler decides with (never written: its id
        follows from the run, so two instances deciding it agree)."""
        return make_envelope(
            TriggerDagRun(
                dag_id=self.dag_id,
                run_id=self.run_id,
                run_type="asset_triggered",
                triggered_by="asset",
                triggering_asset_events=self.events,
            ),
            id=deterministic_id("AssetTriggeredRun", self.dag_id, self.run_id),
            source=ASSET_TRIGGER_SOURCE,
            time=now,
            aggregate_key=self.dag_id,
            correlation_id=self.run_id,
        )


def is_asset_scheduled(dag: SerializedDag | None) -> bool:
    return (
        dag is not None
        and dag.asset_condition is not None
        and dag.timetable is not None
        and dag.timetable.kind in ASSET_TIMETABLE_KINDS
    )


def due_asset_run(
    dag: SerializedDag,
    state: DagState,
    book: AssetBook,
    *,
    since: datetime | None = None,
) -> AssetTrigger | None:
    """The run an asset-scheduled DAG is due, if its condition holds over the events
    after its previous asset-triggered runs', not older than ``since`` (when the DAG's
    first version was published) nor than the DAG's latest unpause."""
    cond = dag.asset_condition
    if cond is None or not is_asset_scheduled(dag):
        return None
    paused = state.is_paused if state.is_paused is not None else dag.is_paused_upon_creation
    if paused:
        return None
    # Airflow queues no run for a paused DAG: events from before the latest unpause
    # (they came while it was paused) never trigger it, as for Kafka messages (ADR 0014).
    unpaused_at: datetime | None = getattr(state, "unpaused_at", None)
    if unpaused_at is not None and (since is None or unpaused_at > since):
        since = unpaused_at
    assets, aliases = condition_leaves(cond)
    names = set(assets)
    for alias in aliases:
        names |= book.alias_assets.get(alias, set())
    mark = watermark(state.runs.values())
    new: list[BookedEvent] = []
    for name in names:
        for booked in reversed(book.by_name.get(name, ())):
            if booked.position <= mark:
                break
            if since is None or booked.event.timestamp >= since:
                new.append(booked)
    if not new:
        return None
    new.sort(key=lambda b: b.position)
    updated = {b.event.name for b in new}
    hits = {a for b in new for a in b.event.source_aliases if a in aliases}
    if not evaluate(cond, updated, hits, book.alias_assets):
        return None
    newest = max(b.event.timestamp for b in new)
    run_id = f"asset_triggered__{newest.isoformat()}"
    if run_id in state.runs:
        run_id = f"{run_id}-{new[-1].position}"
        if run_id in state.runs:
            return None
    return AssetTrigger(dag.dag_id, run_id, tuple(b.as_dict() for b in new))


__all__ = [
    "ASSET_TRIGGER_SOURCE",
    "AssetBook",
    "AssetTrigger",
    "BookedEvent",
    "asset_event_id",
    "condition_leaves",
    "due_asset_run",
    "emitted_for_success",
    "evaluate",
    "is_asset_scheduled",
    "watermark",
]
