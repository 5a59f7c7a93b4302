"""The pure asset core (ADR 0013): conditions (all/any/nested/alias), the book, the
watermark derived from the run log, and the events a success publishes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ledgerflow.common.core import decide, empty, evolve
from ledgerflow.common.core.assets import (
    AssetBook,
    due_asset_run,
    emitted_for_success,
    evaluate,
    watermark,
)
from ledgerflow.common.core.state import DagState, Run, TaskInstance
from ledgerflow.common.dagmodel import (
    AssetCondition,
    AssetRef,
    SerializedDag,
    SerializedTask,
    TimetableSpec,
)
from ledgerflow.common.events import (
    AssetEventEmitted,
    AssetEventReport,
    DagRunQueued,
    TaskAttemptSucceeded,
    make_envelope,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def leaf(name: str) -> AssetCondition:
    return AssetCondition(op="asset", asset=AssetRef(name=name, uri=name))


def alias(name: str) -> AssetCondition:
    return AssetCondition(op="alias", asset=AssetRef(kind="alias", name=name))


def all_(*c: AssetCondition) -> AssetCondition:
    return AssetCondition(op="all", children=c)


def any_(*c: AssetCondition) -> AssetCondition:
    return AssetCondition(op="any", children=c)


def consumer(cond: AssetCondition, *, paused_on_creation: bool = False) -> SerializedDag:
    return SerializedDag(
        dag_id="consumer",
        fileloc="c.py",
        timetable=TimetableSpec(kind="asset"),
        asset_condition=cond,
        is_paused_upon_creation=paused_on_creation,
        tasks=(SerializedTask(task_id="t", operator="PythonOperator"),),
    )


def event(name: str, n: int, *, aliases: tuple[str, ...] = (), extra: dict | None = None):
    return make_envelope(
        AssetEventEmitted(
            name=name,
            uri=name,
            extra=extra or {},
            source_aliases=aliases,
            timestamp=T0 + timedelta(seconds=n),
        ),
        id=f"e-{name}-{n}",
        source="test",
        time=T0 + timedelta(seconds=n),
        aggregate_key=name,
    )


def book_of(*envs) -> AssetBook:
    book = AssetBook()
    for pos, env in enumerate(envs):
        book.add(pos, env)
    return book


def test_evaluate_all_any_nested():
    cond = any_(all_(leaf("a"), leaf("b")), leaf("c"))
    assert not evaluate(cond, {"a"}, set())
    assert evaluate(cond, {"a", "b"}, set())
    assert evaluate(cond, {"c"}, set())
    assert not evaluate(all_(), {"a"}, set())
    assert not evaluate(any_(), {"a"}, set())


def test_evaluate_alias_by_hit_or_resolution():
    cond = all_(alias("al"), leaf("b"))
    assert not evaluate(cond, {"b"}, set())
    assert evaluate(cond, {"b", "x"}, {"al"})
    assert evaluate(cond, {"b", "x"}, set(), {"al": {"x"}})


def test_book_drops_duplicates_and_resolves_aliases():
    book = AssetBook()
    assert book.add(0, event("a", 1)) is not None
    assert book.add(1, event("a", 1)) is None  # same id
    book.add(2, event("x", 2, aliases=("al",)))
    assert [b.position for b in book.events] == [0, 2]
    assert book.alias_assets == {"al": {"x"}}
    assert "e-a-1" in book


def test_all_waits_for_every_asset_then_triggers_once():
    dag = consumer(all_(leaf("x"), leaf("y")))
    state = empty("consumer")
    book = book_of(event("x", 1, extra={"rows": 3}))
    assert due_asset_run(dag, state, book) is None
    book.add(1, event("y", 2))
    due = due_asset_run(dag, state, book)
    assert due is not None
    assert due.run_id == f"asset_triggered__{(T0 + timedelta(seconds=2)).isoformat()}"
    assert [e["name"] for e in due.events] == ["x", "y"]
    assert due.events[0]["extra"] == {"rows": 3}


def _fold_trigger(dag: SerializedDag, state: DagState, due) -> DagState:
    class Cat:
        def get(self, vid):
            return dag

        def latest_version_id(self, dag_id):
            return "v1"

    decision = decide(state, due.command(now=T0), now=T0, catalog=Cat())
    queued = [e for e in decision.events if isinstance(e.data, DagRunQueued)]
    assert len(queued) == 1
    assert queued[0].data.run_type == "asset_triggered"
    assert queued[0].data.triggering_asset_events == due.events
    return decision.state


def test_replay_derives_what_is_new_from_the_run_log():
    dag = consumer(all_(leaf("x"), leaf("y")))
    book = book_of(event("x", 1), event("y", 2))
    state = _fold_trigger(dag, empty("consumer"), due_asset_run(dag, empty("consumer"), book))
    assert watermark(state.runs.values()) == 1
    # Deciding again on the same book: nothing new.
    assert due_asset_run(dag, state, book) is None
    # A restarted scheduler replays the run log: same state, same answer.
    replayed = empty("consumer")
    for run in state.runs.values():
        q = DagRunQueued(
            dag_id=run.dag_id,
            run_id=run.run_id,
            version_id=run.version_id,
            run_type="asset_triggered",
            queued_at=run.queued_at,
            triggering_asset_events=run.triggering_asset_events,
        )
        replayed = evolve(
            replayed,
            make_envelope(q, id="q", source="ledgerflow/scheduler", time=T0, aggregate_key="c"),
        )
    assert due_asset_run(dag, replayed, book) is None
    # Only x again: all() still needs a new y.
    book.add(2, event("x", 3))
    assert due_asset_run(dag, replayed, book) is None
    book.add(3, event("y", 4))
    due = due_asset_run(dag, replayed, book)
    assert due is not None and [e["position"] for e in due.events] == [2, 3]


def test_any_and_alias_schedules():
    dag = consumer(any_(leaf("a"), alias("al")))
    assert due_asset_run(dag, empty("consumer"), book_of(event("b", 1))) is None
    due = due_asset_run(dag, empty("consumer"), book_of(event("x", 1, aliases=("al",))))
    assert due is not None and due.events[0]["source_aliases"] == ["al"]
    # Once resolved, the alias's asset triggers without going through the alias.
    book = book_of(event("x", 1, aliases=("al",)))
    state = _fold_trigger(dag, empty("consumer"), due_asset_run(dag, empty("consumer"), book))
    book.add(1, event("x", 2))
    assert due_asset_run(dag, state, book) is not None


def test_paused_and_older_than_the_dag_do_not_trigger():
    book = book_of(event("a", 1), event("a", 5))
    assert due_asset_run(consumer(leaf("a"), paused_on_creation=True), empty("c"), book) is None
    due = due_asset_run(consumer(leaf("a")), empty("c"), book, since=T0 + timedelta(seconds=3))
    assert due is not None and [e["position"] for e in due.events] == [1]
    assert (
        due_asset_run(consumer(leaf("a")), empty("c"), book, since=T0 + timedelta(days=1)) is None
    )


def _state_with_success(try_number: int) -> DagState:
    ti = TaskInstance("p", state="success", try_number=try_number)
    run = Run("producer", "r1", "v1", "running", "manual", T0).with_task(ti)
    return DagState("producer").with_run(run)


def test_emitted_for_success_is_deterministic_and_guarded():
    report = make_envelope(
        TaskAttemptSucceeded(
            dag_id="producer",
            run_id="r1",
            task_id="p",
            try_number=1,
            end_date=T0,
            executor_id="e",
            asset_events=(AssetEventReport(name="x", uri="s3://x", extra={"n": 1}),),
        ),
        id="report",
        source="executor",
        time=T0,
        aggregate_key="producer",
    )
    first = emitted_for_success(_state_with_success(1), report)
    again = emitted_for_success(_state_with_success(1), report)
    assert [e.id for e in first] == [e.id for e in again] and len(first) == 1
    e = first[0]
    assert e.aggregate_key == "x" and e.data.extra == {"n": 1}
    assert (e.data.source_dag_id, e.data.source_task_id, e.data.timestamp) == ("producer", "p", T0)
    # A stale report (the instance is on another try) publishes nothing.
    assert emitted_for_success(_state_with_success(2), report) == []


def test_events_while_paused_are_dropped_after_unpause():
    from ledgerflow.common.core.state import updated

    dag = consumer(leaf("a"))
    book = book_of(event("a", 1))
    paused = updated(empty("c"), is_paused=True)
    assert due_asset_run(dag, paused, book) is None
    unpaused = updated(empty("c"), is_paused=False, unpaused_at=T0 + timedelta(seconds=2))
    assert due_asset_run(dag, unpaused, book) is None
    book.add(1, event("a", 3))
    due = due_asset_run(dag, unpaused, book)
    assert due is not None and [e["position"] for e in due.events] == [1]
