"""Scheduled runs from the log, given/when/then with a fake clock: cron and delta ticks,
catchup both ways, max_active_runs, pause and unpause, end_date, @once, @continuous,
dagrun_timeout, auto-pause, and replay-then-decide after a crash at any point."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given as hgiven
from hypothesis import settings
from hypothesis import strategies as st
from ledgerflow.common.core import DagState, Decision, Tick, decide, empty, evolve
from ledgerflow.common.dagmodel import TimetableSpec
from ledgerflow.common.events import (
    CancelTaskAttempt,
    DagPauseChanged,
    DagRunFailed,
    DagRunQueued,
    Envelope,
    RunTaskAttempt,
    SetDagPaused,
    TaskInstanceStateSet,
    deterministic_id,
    make_envelope,
)

from .core_harness import FakeCatalog, dag_of, failed, started, succeeded, task

T0 = datetime(2026, 3, 1, tzinfo=UTC)
EVERY_5 = TimetableSpec(kind="cron_trigger", expression="*/5 * * * *")


def sched_dag(timetable: TimetableSpec = EVERY_5, **kw: Any):
    kw.setdefault("start_date", T0)
    return dag_of(task("a"), timetable=timetable, **kw)


class Clock:
    """Drives ``decide`` like the scheduler service: a fake ``now``, the log kept."""

    def __init__(self, dag, *, now: datetime = T0) -> None:
        self.catalog = FakeCatalog()
        self.catalog.add(dag)
        self.state: DagState = empty(dag.dag_id)
        self.now = now
        self.log: list[Envelope] = []
        self.last: Decision | None = None

    def feed(self, inbound: Envelope | Tick) -> Decision:
        d = decide(self.state, inbound, now=self.now, catalog=self.catalog)
        self.state = d.state
        if isinstance(inbound, Envelope) and inbound.source != "ledgerflow/scheduler":
            self.log.append(inbound)
        self.log.extend(d.events)
        self.last = d
        return d

    def tick(self, *, full: bool = False) -> Decision:
        return self.feed(Tick(self.state.dag_id, full=full))

    def at(self, **delta: float) -> Clock:
        self.now = T0 + timedelta(**delta)
        return self

    def queued(self, d: Decision | None = None) -> list[str]:
        d = d or self.last
        assert d is not None
        return [e.data.run_id for e in d.events if isinstance(e.data, DagRunQueued)]

    def pause(self, paused: bool) -> Decision:
        cmd = make_envelope(
            SetDagPaused(dag_id=self.state.dag_id, is_paused=paused, requested_by="alice"),
            id=deterministic_id("pause", paused, self.now.isoformat()),
            source="ledgerflow/api",
            time=self.now,
            aggregate_key=self.state.dag_id,
        )
        return self.feed(cmd)

    def work_of(self, run_id: str) -> list[RunTaskAttempt]:
        return [
            w.data
            for w in (self.last.work if self.last else ())
            if isinstance(w.data, RunTaskAttempt) and w.data.run_id == run_id
        ]

    def finish(self, item: RunTaskAttempt, *, ok: bool = True) -> Decision:
        self.feed(started(item, self.now))
        return self.feed(
            succeeded(item, self.now) if ok else failed(item, self.now, retryable=False)
        )


def rid(**delta: float) -> str:
    return f"scheduled__{(T0 + timedelta(**delta)).isoformat()}"


# --------------------------------------------------------------------------- cron ticks
def test_a_due_cron_tick_creates_the_run_with_its_interval_and_wakes_for_the_next():
    c = Clock(sched_dag(catchup=False)).at(minutes=5)
    d = c.tick()
    assert c.queued() == [rid(minutes=5)]
    run = next(e.data for e in d.events if isinstance(e.data, DagRunQueued))
    assert run.run_type == "scheduled"
    assert run.logical_date == run.run_after == T0 + timedelta(minutes=5)
    assert run.data_interval_start == run.data_interval_end == run.logical_date
    assert d.events[0].id == deterministic_id("DagRunQueued", "d", rid(minutes=5))
    assert c.state.runs[rid(minutes=5)].state == "running"  # started in the same decision
    assert d.wake_at == T0 + timedelta(minutes=10)


def test_nothing_is_created_before_the_tick_is_due():
    c = Clock(sched_dag(start_date=T0 + timedelta(minutes=1)))
    d = c.at(minutes=4, seconds=59).tick()
    assert c.queued() == []
    assert d.wake_at == T0 + timedelta(minutes=5)
    c.at(minutes=5).tick()
    assert c.queued() == [rid(minutes=5)]


def test_a_cron_trigger_interval_gives_the_data_interval_before_the_tick():
    spec = TimetableSpec(kind="cron_trigger", expression="0 * * * *", interval_seconds=3600)
    c = Clock(sched_dag(spec, catchup=False)).at(hours=1)
    run = next(e.data for e in c.tick().events if isinstance(e.data, DagRunQueued))
    assert (run.data_interval_start, run.data_interval_end) == (T0, T0 + timedelta(hours=1))
    assert run.logical_date == T0 + timedelta(hours=1)


def test_cron_data_interval_runs_when_the_interval_ends_with_its_start_as_logical_date():
    spec = TimetableSpec(kind="cron_data_interval", expression="@hourly")
    c = Clock(sched_dag(spec, catchup=True)).at(hours=2, minutes=30)
    c.tick()
    assert c.queued() == [rid(hours=0), rid(hours=1)]
    last = c.state.runs[rid(hours=1)]
    assert last.logical_date == T0 + timedelta(hours=1)


# --------------------------------------------------------------------------- catchup
def test_catchup_true_creates_every_missed_interval_in_order():
    c = Clock(sched_dag(catchup=True)).at(minutes=17)
    c.tick()
    assert c.queued() == [rid(minutes=0), rid(minutes=5), rid(minutes=10), rid(minutes=15)]
    assert c.last is not None and c.last.wake_at == T0 + timedelta(minutes=20)


def test_catchup_false_creates_only_the_latest_due_interval():
    c = Clock(sched_dag(catchup=False)).at(minutes=17)
    c.tick()
    assert c.queued() == [rid(minutes=15)]
    c.at(minutes=31).tick()
    assert c.queued() == [rid(minutes=30)]  # 20 and 25 are skipped


def test_delta_schedule_counts_from_the_start_date():
    spec = TimetableSpec(kind="delta_trigger", delta_seconds=2)
    c = Clock(sched_dag(spec, catchup=True)).at(seconds=5)
    c.tick()
    assert c.queued() == [rid(seconds=0), rid(seconds=2), rid(seconds=4)]


def test_max_active_runs_limits_what_catchup_creates_and_a_finished_run_makes_room():
    c = Clock(sched_dag(catchup=True, max_active_runs=2)).at(minutes=22)
    d = c.tick()
    assert c.queued() == [rid(minutes=0), rid(minutes=5)]
    assert d.wake_at is None  # at the limit: a run ending decides again
    item = c.work_of(rid(minutes=0))[0]
    c.finish(item)
    assert c.state.runs[rid(minutes=0)].state == "success"
    assert c.queued() == [rid(minutes=10)]  # created by the run's end, no tick needed


def test_end_date_stops_the_schedule():
    c = Clock(sched_dag(catchup=True, end_date=T0 + timedelta(minutes=10))).at(minutes=40)
    d = c.tick()
    assert c.queued() == [rid(minutes=0), rid(minutes=5), rid(minutes=10)]
    assert d.wake_at is None or d.wake_at > c.now


def test_once_runs_once():
    c = Clock(sched_dag(TimetableSpec(kind="once"))).at(minutes=1)
    c.tick()
    assert c.queued() == [rid(minutes=0)]
    c.finish(c.work_of(rid(minutes=0))[0])
    assert c.queued() == []
    assert c.at(days=3).tick().events == ()


def test_continuous_starts_a_new_run_as_soon_as_the_previous_one_ends():
    c = Clock(sched_dag(TimetableSpec(kind="continuous"), max_active_runs=1)).at(seconds=1)
    c.tick()
    assert c.queued() == [rid(seconds=0)]
    c.at(seconds=3)
    c.finish(c.work_of(rid(seconds=0))[0])
    assert c.queued() == [rid(seconds=1)]  # its interval starts where the last one ended
    assert c.state.runs[rid(seconds=1)].state == "running"
    assert c.at(seconds=9).tick().events == ()  # one at a time


def test_a_dag_without_a_timetable_creates_no_runs():
    c = Clock(dag_of(task("a"), start_date=T0)).at(days=1)
    d = c.tick(full=True)
    assert d.events == () and d.wake_at is None


# --------------------------------------------------------------------------- pause
def test_paused_upon_creation_creates_nothing_and_unpause_with_catchup_creates_the_missed():
    c = Clock(sched_dag(catchup=True, is_paused_upon_creation=True)).at(minutes=12)
    d = c.tick()
    assert d.events == () and d.wake_at is None
    c.at(minutes=16)
    c.pause(False)
    assert c.queued() == [rid(minutes=0), rid(minutes=5), rid(minutes=10), rid(minutes=15)]


def test_unpause_without_catchup_creates_only_the_latest():
    c = Clock(sched_dag(catchup=False)).at(minutes=6)
    c.tick()
    assert c.queued() == [rid(minutes=5)]
    c.pause(True)
    assert c.at(minutes=30).tick().events == ()
    c.at(minutes=41)
    c.pause(False)
    assert c.queued() == [rid(minutes=40)]


# --------------------------------------------------------------------------- hot path
def test_a_task_event_does_not_evaluate_the_schedule_but_asks_for_a_tick():
    c = Clock(sched_dag(catchup=True, max_active_runs=5)).at(minutes=1)
    c.tick()
    item = c.work_of(rid(minutes=0))[0]
    c.at(minutes=6)
    d = c.feed(started(item, c.now))
    assert c.queued(d) == []
    assert d.wake_at is not None and d.wake_at <= c.now  # due: the service ticks at once
    c.tick()
    assert c.queued() == [rid(minutes=5)]


# --------------------------------------------------------------------------- redelivery
def test_redelivered_scheduled_run_and_a_repeated_tick_change_nothing():
    c = Clock(sched_dag(catchup=True)).at(minutes=11)
    c.tick()
    before = c.state
    for env in list(c.log):
        assert evolve(c.state, env) is c.state
    assert c.tick().events == ()
    assert c.tick(full=True).events == ()
    assert c.state.last_scheduled == before.last_scheduled


# --------------------------------------------------------------------------- recovery
def replay(log: list[Envelope], dag_id: str = "d") -> DagState:
    state = empty(dag_id)
    for env in log:
        state = evolve(state, env)
    return state


def live(dag, *, ticks: list[float], finish_every: int) -> Clock:
    """A scheduler that ticks at the given minutes and finishes some runs' tasks."""
    c = Clock(dag)
    for n, minute in enumerate(ticks):
        c.at(minutes=minute).tick()
        if finish_every and n % finish_every == 0:
            for item in [w.data for w in c.last.work] if c.last else []:
                c.finish(item)
    return c


@settings(max_examples=60, deadline=None)
@hgiven(
    ticks=st.lists(st.floats(min_value=0, max_value=90), min_size=1, max_size=8).map(sorted),
    cut=st.floats(min_value=0, max_value=1),
    restart_after=st.floats(min_value=0, max_value=60),
    catchup=st.booleans(),
    finish_every=st.integers(min_value=0, max_value=2),
)
def test_replay_then_decide_after_a_crash_creates_exactly_the_missing_runs(
    ticks, cut, restart_after, catchup, finish_every
):
    dag = sched_dag(catchup=catchup, max_active_runs=100)
    c = live(dag, ticks=ticks, finish_every=finish_every)
    # The scheduler dies after writing some prefix of its log.
    written = c.log[: int(len(c.log) * cut)]
    now = T0 + timedelta(minutes=ticks[-1] + restart_after)
    state = replay(written)
    d = decide(state, Tick("d", full=True), now=now, catalog=c.catalog)
    before = [e.data.run_id for e in written if isinstance(e.data, DagRunQueued)]
    new = [e.data.run_id for e in d.events if isinstance(e.data, DagRunQueued)]
    assert not set(before) & set(new)  # never an interval twice
    # Exactly what a scheduler that never crashed has at ``now``:
    reference = Clock(dag)
    reference.now = now
    reference.state = replay(written)
    created = sorted(before + new)
    if catchup:  # every interval since the start date, no gap
        expected = [rid(minutes=m) for m in range(0, int((now - T0).total_seconds() // 60) + 1, 5)]
        assert created == expected
    else:  # what was written, plus the latest due one if it was not written yet
        latest = rid(minutes=5 * int((now - T0).total_seconds() // 300))
        assert latest in created
        assert created == sorted(set(before) | {latest})
    # Deciding again on the result emits nothing.
    assert decide(d.state, Tick("d", full=True), now=now, catalog=c.catalog).events == ()


@pytest.mark.parametrize("cut", range(0, 14))
def test_two_instances_deciding_the_same_interval_write_the_same_event(cut):
    c = Clock(sched_dag(catchup=True)).at(minutes=27)
    c.tick()
    other = decide(replay(c.log[:cut]), Tick("d"), now=c.now, catalog=c.catalog)
    mine = {e.id: e.data for e in c.log if isinstance(e.data, DagRunQueued)}
    theirs = {e.id: e.data for e in other.events if isinstance(e.data, DagRunQueued)}
    for event_id, data in theirs.items():
        assert event_id in mine and mine[event_id].run_id == data.run_id


# --------------------------------------------------------------------------- timeouts
def test_dagrun_timeout_fails_the_run_skips_unfinished_instances_and_cancels_attempts():
    dag = dag_of(
        task("a"),
        task("b", "a"),
        task("c"),
        timetable=EVERY_5,
        start_date=T0,
        dagrun_timeout_seconds=20,
    )
    c = Clock(dag).at(minutes=0)
    c.tick()
    run_id = rid(minutes=0)
    items = {w.task_id: w for w in c.work_of(run_id)}
    c.finish(items["c"])
    c.feed(started(items["a"], c.now))
    assert c.last is not None and c.last.wake_at == T0 + timedelta(seconds=20)  # not 30 (zombie)
    c.at(seconds=19).tick()
    assert c.state.runs[run_id].state == "running"
    d = c.at(seconds=20).tick()
    marks = [e.data for e in d.events if isinstance(e.data, TaskInstanceStateSet)]
    assert {(m.task_id, m.state) for m in marks} == {("a", "skipped"), ("b", "skipped")}
    assert [type(e.data) for e in d.events].count(DagRunFailed) == 1
    assert c.state.runs[run_id].state == "failed"
    assert c.state.runs[run_id].ti("c").state == "success"
    cancels = [e.data for e in d.control if isinstance(e.data, CancelTaskAttempt)]
    assert [(x.task_id, x.state) for x in cancels] == [("a", "skipped")]
    # The late report of the killed attempt changes nothing.
    late = c.feed(succeeded(items["a"], c.now))
    assert late.events == () and c.state.runs[run_id].ti("a").state == "skipped"


def test_the_run_timeout_is_a_wake_time():
    c = Clock(sched_dag(catchup=False, dagrun_timeout_seconds=120)).at(minutes=0, seconds=10)
    d = c.tick()
    assert c.queued(d) == [rid(minutes=0)]
    assert d.wake_at == T0 + timedelta(minutes=2, seconds=10)


# --------------------------------------------------------------------------- auto-pause
def test_consecutive_failed_runs_pause_the_dag():
    c = Clock(sched_dag(catchup=True, max_consecutive_failed_dag_runs=2, max_active_runs=1))
    c.at(minutes=12).tick()
    c.finish(c.work_of(rid(minutes=0))[0], ok=False)
    assert c.state.runs[rid(minutes=0)].state == "failed"
    assert c.state.is_paused is None
    c.finish(c.work_of(rid(minutes=5))[0], ok=False)
    pauses = (
        [e.data for e in c.last.events if isinstance(e.data, DagPauseChanged)] if c.last else []
    )
    assert len(pauses) == 1 and pauses[0].is_paused
    assert pauses[0].changed_by and pauses[0].changed_by.startswith("scheduler")
    assert c.queued() == []  # paused: 10 is not created
    assert c.at(minutes=30).tick().events == ()


def test_a_success_between_failures_does_not_pause():
    c = Clock(sched_dag(catchup=True, max_consecutive_failed_dag_runs=2, max_active_runs=1))
    c.at(minutes=12).tick()
    c.finish(c.work_of(rid(minutes=0))[0], ok=False)
    c.finish(c.work_of(rid(minutes=5))[0], ok=True)
    c.finish(c.work_of(rid(minutes=10))[0], ok=False)
    assert c.state.is_paused is None


def test_a_timetable_that_cannot_schedule_creates_nothing_and_does_not_crash():
    bad = TimetableSpec(kind="cron_trigger", expression="not a cron")
    c = Clock(sched_dag(bad)).at(days=1)
    d = c.tick(full=True)
    assert d.events == () and d.wake_at is None


def test_scheduled_runs_are_triggered_by_the_timetable():
    c = Clock(sched_dag(catchup=False)).at(minutes=5)
    run = next(e.data for e in c.tick().events if isinstance(e.data, DagRunQueued))
    assert run.triggered_by == "timetable"
