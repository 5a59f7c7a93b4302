"""Runs triggered by messages on external Kafka topics (ADR 0014), pure.

The scheduler's watcher runtime reads the topics an asset's watchers name, filters
each message (:mod:`.message_filter`) and writes an ``ExternalMessageReceived`` fact to
the run log. From here on everything follows from the log:

- :func:`fold_message` (called by ``evolve``) keeps, per (asset, watcher, topic,
  partition), the next offset to read, and the facts whose run does not exist yet;
- :func:`queue_pending` (called by ``decide`` for such a fact, and on a full tick after
  a replay) creates exactly one ``DagRunQueued(run_type="asset_triggered")`` per
  message; its ``run_id`` comes from the message's position, so deciding it twice, or
  on two instances during a rebalance, yields the same run;
- :func:`accepts` says whether a message may become a run at all: not while the DAG is
  paused, and not for a message older than the DAG's latest unpause (Airflow creates
  no runs for a paused DAG's asset events; a restarted watcher that reads the pause
  period again must drop the same messages).

Imports only the standard library, events, dagmodel and the core's state.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ledgerflow.common.core.state import DagState, updated
from ledgerflow.common.dagmodel import AssetCondition, AssetRef, SerializedDag, WatcherSpec
from ledgerflow.common.events import (
    DagRunQueued,
    Envelope,
    ExternalMessageReceived,
    deterministic_id,
    make_envelope,
)

if TYPE_CHECKING:
    from ledgerflow.common.core.outbox import Outbox

WATCHER_SOURCE = "ledgerflow/scheduler/watcher"
TRIGGERED_BY = "asset_watcher"

WatchKey = tuple[str, str, str, int]
"""(asset name, watcher name, topic, partition)."""


# --------------------------------------------------------------------------- the DAG
def dag_watchers(dag: SerializedDag | None) -> list[tuple[AssetRef, WatcherSpec]]:
    """The (asset, watcher) pairs of the assets a DAG is scheduled on, in order."""
    if dag is None or dag.asset_condition is None:
        return []
    out: list[tuple[AssetRef, WatcherSpec]] = []
    seen: set[tuple[str, str]] = set()
    stack: list[AssetCondition] = [dag.asset_condition]
    while stack:
        cond = stack.pop(0)
        if cond.op == "asset" and cond.asset is not None:
            for w in cond.asset.watchers:
                if (cond.asset.name, w.name) not in seen:
                    seen.add((cond.asset.name, w.name))
                    out.append((cond.asset, w))
        stack.extend(cond.children)
    return out


# --------------------------------------------------------------------------- the fact
def message_fact_id(
    dag_id: str, asset: str, watcher: str, topic: str, partition: int, offset: int
) -> str:
    return deterministic_id(
        "ExternalMessageReceived", dag_id, asset, watcher, topic, partition, offset
    )


def message_fact(data: ExternalMessageReceived, *, now: datetime) -> Envelope:
    """The envelope the watcher runtime writes to the run log (keyed by the DAG id)."""
    return make_envelope(
        data,
        id=message_fact_id(
            data.dag_id, data.asset, data.watcher, data.topic, data.partition, data.offset
        ),
        source=WATCHER_SOURCE,
        time=now,
        aggregate_key=data.dag_id,
        correlation_id=message_run_id(data),
    )


def message_time(data: ExternalMessageReceived) -> datetime | None:
    if data.timestamp_ms is None or data.timestamp_ms < 0:
        return None
    return datetime.fromtimestamp(data.timestamp_ms / 1000, UTC)


def message_run_id(data: ExternalMessageReceived) -> str:
    """``asset_triggered__<message time>__<topic>-<partition>-<offset>``: one run per
    message and DAG (two watchers of one DAG matching the same message make one run)."""
    at = message_time(data)
    stamp = at.isoformat() if at is not None else "notime"
    return f"asset_triggered__{stamp}__{data.topic}-{data.partition}-{data.offset}"


def message_conf(data: ExternalMessageReceived) -> dict[str, Any]:
    """The run's ``conf``: the message."""
    conf: dict[str, Any] = {
        "topic": data.topic,
        "partition": data.partition,
        "offset": data.offset,
        "key": data.key,
        "value": data.value,
        "headers": dict(data.headers),
        "timestamp": data.timestamp_ms,
    }
    if data.value_format != "json":
        conf["value_format"] = data.value_format
    if data.value_omitted:
        conf["value_omitted"] = True
    return conf


# --------------------------------------------------------------------------- the fold
def fold_message(state: DagState, event: Envelope) -> DagState:
    """Fold an ``ExternalMessageReceived``: advance the resume offset and remember the
    fact until its run exists. Idempotent (a copy changes nothing)."""
    data = event.data
    assert isinstance(data, ExternalMessageReceived)
    key: WatchKey = (data.asset, data.watcher, data.topic, data.partition)
    changes: dict[str, Any] = {}
    if state.watch_offsets.get(key, -1) < data.offset + 1:
        offsets = dict(state.watch_offsets)
        offsets[key] = data.offset + 1
        changes["watch_offsets"] = offsets
    run_id = message_run_id(data)
    if run_id not in state.runs and run_id not in state.pending_messages:
        pending = dict(state.pending_messages)
        pending[run_id] = event
        changes["pending_messages"] = pending
    return updated(state, **changes) if changes else state


def drop_pending(state: DagState, run_id: str) -> DagState:
    """The run of a recorded message was created (folded with its ``DagRunQueued``)."""
    if run_id not in state.pending_messages:
        return state
    pending = dict(state.pending_messages)
    del pending[run_id]
    return updated(state, pending_messages=pending)


def resume_offset(
    state: DagState, asset: str, watcher: str, topic: str, partition: int
) -> int | None:
    """Where a watcher goes on reading a partition (None: it never recorded a message)."""
    found: int | None = state.watch_offsets.get((asset, watcher, topic, partition))
    return found


def is_paused(state: DagState, dag: SerializedDag | None) -> bool:
    if state.is_paused is not None:
        return bool(state.is_paused)
    return bool(dag is not None and dag.is_paused_upon_creation)


def accepts(state: DagState, dag: SerializedDag | None, timestamp_ms: int | None) -> bool:
    """May a message become a run? Not while the DAG is paused, and not when it was
    produced before the DAG's latest unpause (it arrived while the DAG was paused)."""
    if is_paused(state, dag):
        return False
    if state.unpaused_at is not None and timestamp_ms is not None:
        return timestamp_ms >= int(state.unpaused_at.timestamp() * 1000)
    return True


# --------------------------------------------------------------------------- deciding
def _asset_event(
    data: ExternalMessageReceived, ref: AssetRef | None, at: datetime
) -> dict[str, Any]:
    return {
        "id": deterministic_id("AssetEventFromMessage", data.dag_id, message_run_id(data)),
        "name": data.asset,
        "uri": ref.uri if ref is not None else data.asset,
        "group": ref.group if ref is not None else "asset",
        "extra": {
            "watcher": data.watcher,
            "topic": data.topic,
            "partition": data.partition,
            "offset": data.offset,
        },
        "source_aliases": [],
        "source_dag_id": None,
        "source_run_id": None,
        "source_task_id": None,
        "source_map_index": -1,
        "source_watcher": data.watcher,
        "timestamp": at.isoformat(),
    }


def queue_pending(out: Outbox) -> None:
    """Create the run of every recorded message that has none yet (oldest first). A
    message whose DAG version the catalog does not know yet waits for a later tick."""
    state = out.state
    if not state.pending_messages:
        return
    version_id = out.catalog.latest_version_id(state.dag_id)
    dag = out.catalog.get(version_id) if version_id else None
    if version_id is None or dag is None:
        return
    refs = {ref.name: ref for ref, _ in dag_watchers(dag)}
    pending = sorted(
        state.pending_messages.items(),
        key=lambda item: (item[1].data.topic, item[1].data.partition, item[1].data.offset),
    )
    for run_id, env in pending:
        if run_id in out.state.runs:
            continue
        data = env.data
        assert isinstance(data, ExternalMessageReceived)
        at = message_time(data) or env.time
        out.emit(
            DagRunQueued(
                dag_id=state.dag_id,
                run_id=run_id,
                version_id=version_id,
                run_type="asset_triggered",
                conf=message_conf(data),
                queued_at=env.time,
                triggered_by=TRIGGERED_BY,
                run_after=at,
                triggering_asset_events=(_asset_event(data, refs.get(data.asset), at),),
            ),
            key=("DagRunQueued", state.dag_id, run_id),
            correlation_id=run_id,
        )


def on_message(out: Outbox, inbound: Envelope) -> None:
    """``decide`` for an ``ExternalMessageReceived``: fold it, create its run."""
    out.apply(inbound)
    queue_pending(out)


__all__ = [
    "TRIGGERED_BY",
    "WATCHER_SOURCE",
    "accepts",
    "dag_watchers",
    "drop_pending",
    "fold_message",
    "is_paused",
    "message_conf",
    "message_fact",
    "message_fact_id",
    "message_run_id",
    "on_message",
    "queue_pending",
    "resume_offset",
]
