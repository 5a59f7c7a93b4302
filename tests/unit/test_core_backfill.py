"""Backfills in the pure core, given/when/then with a fake clock: commands in, backfill
facts and backfill runs out (Airflow 3's backfill model)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ledgerflow.common.core import DagState, Tick, decide, empty, evolve
from ledgerflow.common.dagmodel import TimetableSpec
from ledgerflow.common.events import (
    CancelBackfill,
    CreateBackfill,
    Envelope,
    PauseBackfill,
    RunTaskAttempt,
    SetDagPaused,
    UnpauseBackfill,
    deterministic_id,
    make_envelope,
)

from .core_harness import FakeCatalog, dag_of, failed, started, succeeded, task, trigger

NOW = datetime(2026, 1, 10, 12, tzinfo=UTC)
JAN = [datetime(2026, 1, d, tzinfo=UTC) for d in range(1, 6)]


def rid(day: int) -> str:
    return f"backfill__2026-01-0{day}T00:00:00+00:00"


def daily_dag(**kw: Any):
    kw.setdefault("timetable", TimetableSpec(kind="cron_trigger", expression="@daily"))
    kw.setdefault("start_date", datetime(2025, 12, 1, tzinfo=UTC))
    # Ended before NOW, so the DAG's own schedule creates no runs during these tests.
    kw.setdefault("end_date", JAN[4])
    return dag_of(task("a"), **kw)


def cmd(data: Any, name: str, at: datetime = NOW) -> Envelope:
    return make_envelope(
        data, id=deterministic_id("cmd", name), source="ledgerflow/api", time=at, aggregate_key="d"
    )


def create(name: str = "b1", backfill_id: int = 1, **kw: Any) -> Envelope:
    kw.setdefault("from_date", JAN[0])
    kw.setdefault("to_date", JAN[3])
    return cmd(CreateBackfill(dag_id="d", backfill_id=backfill_id, **kw), name)


class World:
    """The scheduler core plus an executor that runs whatever is queued, by run."""

    def __init__(self, **dag_kw: Any) -> None:
        self.catalog = FakeCatalog()
        self.catalog.add(daily_dag(**dag_kw))
        self.state: DagState = empty("d")
        self.now = NOW
        self.log: list[Envelope] = []
        self.work: dict[str, RunTaskAttempt] = {}
        self.events: list[Envelope] = []

    def feed(self, inbound: Envelope | Tick) -> list[Envelope]:
        decision = decide(self.state, inbound, now=self.now, catalog=self.catalog)
        self.state = decision.state
        self.log.extend(decision.events)
        self.events = list(decision.events)
        for w in decision.work:
            assert isinstance(w.data, RunTaskAttempt)
            self.work[w.data.run_id] = w.data
        return self.events

    def finish(self, run_id: str, ok: bool = True) -> list[Envelope]:
        self.now += timedelta(seconds=1)
        w = self.work.pop(run_id)
        self.feed(started(w, self.now))
        report = succeeded(w, self.now) if ok else failed(w, self.now, retryable=False)
        return self.feed(report)

    def types(self, events: list[Envelope] | None = None) -> list[str]:
        return [e.data.type for e in (self.events if events is None else events)]

    def of_type(self, name: str, events: list[Envelope] | None = None) -> list[Any]:
        return [e.data for e in (self.events if events is None else events) if e.data.type == name]

    def running(self) -> list[str]:
        return sorted(r.run_id for r in self.state.runs.values() if r.state == "running")

    def existing_run(self, day: int, *, ok: bool) -> str:
        """A scheduled run at Jan ``day`` that finished (``ok``: success, else failed)."""
        run_id = f"scheduled__2026-01-0{day}T00:00:00+00:00"
        self.feed(trigger(run_id, at=self.now, logical_date=JAN[day - 1]))
        self.finish(run_id, ok=ok)
        return run_id


# --------------------------------------------------------------------------- create
def test_a_backfill_plans_every_date_and_runs_at_most_max_active_runs_at_once():
    w = World()
    w.feed(create(max_active_runs=2, dag_run_conf={"x": 1}, requested_by="ann"))
    created = w.of_type("BackfillCreated")[0]
    assert [(p.sort_ordinal, p.action, p.run_id) for p in created.runs] == [
        (n, "create", rid(n)) for n in range(1, 5)
    ]
    queued = w.of_type("DagRunQueued")
    assert [q.run_id for q in queued] == [rid(1), rid(2)]
    first = queued[0]
    assert (first.run_type, first.backfill_id, first.conf, first.triggered_by) == (
        "backfill",
        1,
        {"x": 1},
        "ann",
    )
    assert first.logical_date == JAN[0] and first.data_interval_end == JAN[0]
    assert w.running() == [rid(1), rid(2)]

    # As runs finish, more are created, in order; the backfill completes with the last.
    w.finish(rid(1))
    assert [q.run_id for q in w.of_type("DagRunQueued")] == [rid(3)]
    assert w.running() == [rid(2), rid(3)]
    w.finish(rid(2))
    w.finish(rid(3))
    assert w.of_type("BackfillCompleted") == []
    w.finish(rid(4))
    assert [c.cancelled for c in w.of_type("BackfillCompleted")] == [False]
    assert {r.run_id: r.state for r in w.state.runs.values()} == {
        rid(n): "success" for n in range(1, 5)
    }
    assert not w.state.backfills[1].active


def test_run_backwards_makes_the_latest_date_first():
    w = World()
    w.feed(create(max_active_runs=1, run_backwards=True))
    assert [p.run_id for p in w.of_type("BackfillCreated")[0].runs] == [
        rid(n) for n in (4, 3, 2, 1)
    ]
    assert [q.run_id for q in w.of_type("DagRunQueued")] == [rid(4)]
    w.finish(rid(4))
    assert [q.run_id for q in w.of_type("DagRunQueued")] == [rid(3)]


def test_backfill_runs_ignore_the_dags_max_active_runs_and_pause():
    w = World(max_active_runs=1)
    w.feed(cmd(SetDagPaused(dag_id="d", is_paused=True), "pause-dag"))
    w.feed(create(max_active_runs=3))
    assert w.running() == [rid(1), rid(2), rid(3)]


def test_a_redelivered_create_does_nothing():
    w = World()
    w.feed(create())
    assert w.feed(create()) == []


# --------------------------------------------------------------------------- reprocess
def _reprocess_world(behavior: str) -> tuple[World, str, str]:
    w = World()
    failed_run = w.existing_run(2, ok=False)
    ok_run = w.existing_run(3, ok=True)
    w.feed(create(reprocess_behavior=behavior, max_active_runs=10))
    return w, failed_run, ok_run


def test_reprocess_none_skips_every_date_that_has_a_run():
    w, failed_run, ok_run = _reprocess_world("none")
    plan = {p.sort_ordinal: p for p in w.of_type("BackfillCreated")[0].runs}
    assert (plan[2].action, plan[2].run_id, plan[2].exception_reason) == (
        "skip",
        failed_run,
        "already exists",
    )
    assert (plan[3].action, plan[3].exception_reason) == ("skip", "already exists")
    assert [q.run_id for q in w.of_type("DagRunQueued")] == [rid(1), rid(4)]


def test_reprocess_failed_reruns_the_failed_run_by_clearing_it():
    w, failed_run, ok_run = _reprocess_world("failed")
    plan = {p.sort_ordinal: p for p in w.of_type("BackfillCreated")[0].runs}
    assert (plan[2].action, plan[2].run_id) == ("rerun", failed_run)
    assert plan[3].action == "skip"
    assert w.of_type("BackfillRunReprocessed")[0].run_id == failed_run
    assert "TaskInstanceCleared" in w.types()
    run = w.state.runs[failed_run]
    assert (run.state, run.run_type) == ("running", "backfill")
    w.finish(rid(1))
    w.finish(failed_run)
    w.finish(rid(4))
    assert w.state.runs[failed_run].state == "success"
    assert w.of_type("BackfillCompleted")
    assert w.state.runs[ok_run].run_type == "manual"


def test_reprocess_completed_reruns_any_finished_run_but_never_one_in_flight():
    w = World()
    ok_run = w.existing_run(1, ok=True)
    busy = "scheduled__2026-01-02T00:00:00+00:00"
    w.feed(trigger(busy, at=w.now, logical_date=JAN[1]))
    w.feed(create(reprocess_behavior="completed", to_date=JAN[1]))
    plan = w.of_type("BackfillCreated")[0].runs
    assert [(p.action, p.run_id, p.exception_reason) for p in plan] == [
        ("rerun", ok_run, None),
        ("skip", busy, "in flight"),
    ]
    assert w.state.runs[ok_run].state == "running"


# --------------------------------------------------------------------------- pause, cancel
def test_pause_stops_creating_runs_and_unpause_resumes():
    w = World()
    w.feed(create(max_active_runs=1))
    assert [e.data.type for e in w.feed(cmd(PauseBackfill(dag_id="d", backfill_id=1), "p1"))] == [
        "BackfillPaused"
    ]
    w.finish(rid(1))
    assert w.of_type("DagRunQueued") == []
    assert w.state.backfills[1].active  # paused, not done
    w.feed(cmd(UnpauseBackfill(dag_id="d", backfill_id=1), "u1"))
    assert w.types()[:3] == ["BackfillUnpaused", "DagRunQueued", "DagRunStarted"]
    # The pause command redelivered after the unpause changes nothing.
    assert w.feed(cmd(PauseBackfill(dag_id="d", backfill_id=1), "p1")) == []
    assert not w.state.backfills[1].is_paused


def test_cancel_stops_creating_fails_queued_runs_and_completes_the_backfill():
    w = World()
    w.feed(create(max_active_runs=2))
    # A backfill run still queued (its DAG version not loaded here yet): replay a log in
    # which the run was queued and never started.
    queued_only = [
        e for e in w.log if not (e.data.type == "DagRunStarted" and e.data.run_id == rid(2))
    ]
    w.state = _replay(queued_only)
    w.catalog.versions.pop("v1")
    w.feed(cmd(CancelBackfill(dag_id="d", backfill_id=1, requested_by="bob"), "c1"))
    w.catalog.add(daily_dag())
    assert w.types()[0] == "BackfillCancelled"
    assert w.types()[-1] == "BackfillCompleted" and w.events[-1].data.cancelled
    assert w.state.runs[rid(2)].state == "failed"
    assert w.state.runs[rid(1)].state == "running"  # a running run finishes
    w.finish(rid(1))
    assert w.of_type("DagRunQueued") == []
    assert rid(3) not in w.state.runs


def test_only_one_active_backfill_per_dag_and_bad_requests_are_rejected():
    w = World()
    w.feed(create())
    w.feed(create("b2", backfill_id=2))
    assert "already a running backfill" in w.of_type("BackfillRejected")[0].reason
    w.feed(cmd(CancelBackfill(dag_id="d", backfill_id=1), "c1"))
    w.feed(create("b3", backfill_id=3, from_date=JAN[3], to_date=JAN[0]))
    assert "must not be after" in w.of_type("BackfillRejected")[0].reason
    w.feed(
        create(
            "b4", backfill_id=4, from_date=NOW + timedelta(days=1), to_date=NOW + timedelta(days=2)
        )
    )
    assert "future" in w.of_type("BackfillRejected")[0].reason
    w.feed(create("b5", backfill_id=5))
    assert w.of_type("BackfillCreated")


def test_a_dag_without_a_periodic_schedule_cannot_be_backfilled():
    w = World(timetable=TimetableSpec(kind="once"))
    w.feed(create())
    assert "non-periodic" in w.of_type("BackfillRejected")[0].reason


# --------------------------------------------------------------------------- recovery
def _replay(log: list[Envelope]) -> DagState:
    state = empty("d")
    for e in log:
        state = evolve(state, e)
    return state


def test_recovery_makes_exactly_the_runs_that_were_due_with_the_same_ids():
    live = World()
    live.feed(create(max_active_runs=2))
    decided = [e.id for e in live.events]
    # The scheduler died right after writing BackfillCreated.
    crashed = World()
    crashed.state = _replay(live.log[:1])
    crashed.feed(Tick("d"))
    assert [e.id for e in crashed.events] == decided[1:]
    # Deciding again on the recovered state emits nothing.
    assert crashed.feed(Tick("d")) == []


def test_recovery_finishes_a_rerun_that_was_announced_but_not_cleared():
    w, failed_run, _ = _reprocess_world("failed")
    cut = next(i for i, e in enumerate(w.log) if e.data.type == "BackfillRunReprocessed")
    recovered = World()
    recovered.state = _replay(w.log[: cut + 1])
    recovered.feed(Tick("d"))
    assert "TaskInstanceCleared" in recovered.types()
    assert recovered.state.runs[failed_run].state == "running"


def test_a_backfill_of_too_many_runs_is_rejected():
    w = World(timetable=TimetableSpec(kind="cron_trigger", expression="*/5 * * * *"), end_date=None)
    w.feed(create(from_date=datetime(2025, 12, 1, tzinfo=UTC), to_date=NOW))  # 11,665 runs
    assert "at most 10000" in w.of_type("BackfillRejected")[0].reason
