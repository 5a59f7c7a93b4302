"""Kafka-triggered runs in the pure core (ADR 0014): one run per recorded message,
dedupe by position, resume offsets and pause handling folded from the log, replay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ledgerflow.common.core import Tick, decide, empty, evolve
from ledgerflow.common.core.messages import (
    accepts,
    dag_watchers,
    message_fact,
    message_run_id,
    resume_offset,
)
from ledgerflow.common.dagmodel import (
    AssetCondition,
    AssetRef,
    SerializedDag,
    SerializedTask,
    TimetableSpec,
    WatcherSpec,
)
from ledgerflow.common.events import (
    DagPauseChanged,
    DagRunQueued,
    ExternalMessageReceived,
    make_envelope,
)

from tests.unit.core_harness import FakeCatalog

T0 = datetime(2026, 1, 1, tzinfo=UTC)
WATCHER = WatcherSpec(name="w", topics=("ext",), filter="value.kind == 'order'")


def watched_dag(*, paused: bool = False) -> SerializedDag:
    ref = AssetRef(name="orders", uri="kafka://orders", watchers=(WATCHER,))
    return SerializedDag(
        dag_id="d",
        fileloc="d.py",
        timetable=TimetableSpec(kind="asset"),
        asset_condition=AssetCondition(op="all", children=(AssetCondition(op="asset", asset=ref),)),
        is_paused_upon_creation=paused,
        tasks=(SerializedTask(task_id="t", operator="PythonOperator"),),
    )


def fact(offset: int, *, partition: int = 0, ts: datetime = T0, value: object = None):
    data = ExternalMessageReceived(
        dag_id="d",
        asset="orders",
        watcher="w",
        topic="ext",
        partition=partition,
        offset=offset,
        key=f"k{offset}",
        value=value if value is not None else {"kind": "order", "n": offset},
        headers={"h": "1"},
        timestamp_ms=int(ts.timestamp() * 1000),
    )
    return message_fact(data, now=ts + timedelta(seconds=1))


def catalog(**kw: bool) -> FakeCatalog:
    c = FakeCatalog()
    c.add(watched_dag(**kw))
    return c


def test_dag_watchers_found_in_the_condition():
    pairs = dag_watchers(watched_dag())
    assert [(r.name, w.name) for r, w in pairs] == [("orders", "w")]
    assert dag_watchers(None) == []


def test_one_run_per_message_with_the_message_in_conf():
    cat = catalog()
    f = fact(7)
    d = decide(empty("d"), f, now=T0 + timedelta(seconds=2), catalog=cat)
    queued = [e.data for e in d.events if isinstance(e.data, DagRunQueued)]
    assert len(queued) == 1
    q = queued[0]
    assert q.run_type == "asset_triggered"
    assert q.run_id == message_run_id(f.data) == f"asset_triggered__{T0.isoformat()}__ext-0-7"
    assert q.conf == {
        "topic": "ext",
        "partition": 0,
        "offset": 7,
        "key": "k7",
        "value": {"kind": "order", "n": 7},
        "headers": {"h": "1"},
        "timestamp": int(T0.timestamp() * 1000),
    }
    (event,) = q.triggering_asset_events
    assert event["name"] == "orders" and event["uri"] == "kafka://orders"
    assert "position" not in event  # the asset book's watermark ignores these runs
    assert resume_offset(d.state, "orders", "w", "ext", 0) == 8
    assert not d.state.pending_messages
    # The same fact again (a redelivery, or written twice around a rebalance): nothing.
    again = decide(d.state, f, now=T0 + timedelta(seconds=3), catalog=cat)
    assert not [e for e in again.events if isinstance(e.data, DagRunQueued)]
    assert again.state.runs.keys() == d.state.runs.keys()


def test_different_offsets_make_different_runs_and_resume_is_per_partition():
    cat = catalog()
    state = empty("d")
    runs: list[str] = []
    for off, part in ((0, 0), (1, 0), (0, 1), (1, 0)):
        d = decide(state, fact(off, partition=part), now=T0, catalog=cat)
        state = d.state
        runs += [e.data.run_id for e in d.events if isinstance(e.data, DagRunQueued)]
    assert len(runs) == 3 and len(set(runs)) == 3
    assert resume_offset(state, "orders", "w", "ext", 0) == 2
    assert resume_offset(state, "orders", "w", "ext", 1) == 1
    assert resume_offset(state, "orders", "w", "ext", 2) is None


def test_replay_then_full_tick_creates_exactly_the_missing_runs():
    cat = catalog()
    live = empty("d")
    log = []
    for off in range(3):
        f = fact(off)
        d = decide(live, f, now=T0, catalog=cat)
        live = d.state
        log.append(f)
        log.extend(d.events)
    # A crash after writing fact 3 but before its DagRunQueued.
    log.append(fact(3))
    replayed = empty("d")
    for env in log:
        replayed = evolve(replayed, env)
    assert set(replayed.pending_messages) == {message_run_id(fact(3).data)}
    d = decide(replayed, Tick("d", full=True), now=T0, catalog=cat)
    queued = [e.data.run_id for e in d.events if isinstance(e.data, DagRunQueued)]
    assert queued == [message_run_id(fact(3).data)]
    # Deciding again emits no run; replaying the whole log with the new events agrees.
    d2 = decide(d.state, Tick("d", full=True), now=T0, catalog=cat)
    assert not [e for e in d2.events if isinstance(e.data, DagRunQueued)]
    full = empty("d")
    for env in [*log, *d.events]:
        full = evolve(full, env)
    assert full.runs.keys() == d.state.runs.keys() and not full.pending_messages
    assert resume_offset(full, "orders", "w", "ext", 0) == 4


def test_fact_waits_for_an_unknown_dag_version():
    empty_catalog = FakeCatalog()
    d = decide(empty("d"), fact(0), now=T0, catalog=empty_catalog)
    assert not d.events and d.state.pending_messages
    d2 = decide(d.state, Tick("d", full=True), now=T0, catalog=catalog())
    assert [e.data.run_type for e in d2.events if isinstance(e.data, DagRunQueued)] == [
        "asset_triggered"
    ]


def test_pause_rules():
    dag = watched_dag()
    ts = int(T0.timestamp() * 1000)
    assert accepts(empty("d"), dag, ts)
    assert not accepts(empty("d"), watched_dag(paused=True), ts)  # paused on creation
    paused = evolve(
        empty("d"),
        make_envelope(
            DagPauseChanged(dag_id="d", is_paused=True),
            id="p1",
            source="ledgerflow/scheduler",
            time=T0,
            aggregate_key="d",
        ),
    )
    assert not accepts(paused, dag, ts + 5000)
    unpaused_at = T0 + timedelta(minutes=1)
    resumed = evolve(
        paused,
        make_envelope(
            DagPauseChanged(dag_id="d", is_paused=False),
            id="p2",
            source="ledgerflow/scheduler",
            time=unpaused_at,
            aggregate_key="d",
        ),
    )
    assert resumed.unpaused_at == unpaused_at
    # A message produced while the DAG was paused is dropped also when read later.
    assert not accepts(resumed, dag, ts + 30_000)
    assert accepts(resumed, dag, ts + 61_000)


def test_fold_is_idempotent():
    f = fact(4)
    once = evolve(empty("d"), f)
    assert evolve(once, f) is once
