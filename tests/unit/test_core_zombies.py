"""Zombies, given/when/then: a running attempt nobody hears of for the zombie timeout
is failed and retried; heartbeats keep it alive without re-deciding the whole run; a
late report of the dead attempt is dropped by its try number."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given as hgiven
from hypothesis import settings
from hypothesis import strategies as st
from ledgerflow.common.core import Tick, decide
from ledgerflow.common.events import (
    CancelTaskAttempt,
    TaskAttemptHeartbeat,
    TaskAttemptZombie,
    TaskInstanceUpForRetry,
    deterministic_id,
    make_envelope,
)

from .core_harness import Driver, failed, make_dag, succeeded

TIMEOUT = timedelta(seconds=30)


def heartbeat(d: Driver, task_id: str, *, executor_id: str = "e", try_number: int | None = None):
    item = d.work[(task_id, -1)]
    data = TaskAttemptHeartbeat(
        dag_id=item.dag_id,
        run_id=item.run_id,
        task_id=task_id,
        map_index=-1,
        try_number=try_number or item.try_number,
        executor_id=executor_id,
        at=d.now,
    )
    env = make_envelope(
        data,
        id=deterministic_id("hb", task_id, d.now.isoformat(), executor_id),
        source="ledgerflow/executor",
        time=d.now,
        aggregate_key=item.dag_id,
    )
    return d.feed(env)


def running(retries: int = 1) -> Driver:
    d = Driver.of(make_dag({"a": [], "b": ["a"]}, retries=retries, retry_delay=0))
    d.trigger()
    d.start("a")
    return d


def test_running_attempt_sets_a_wake_at_its_zombie_deadline():
    d = running()
    assert d.last.wake_at == d.now + TIMEOUT


def test_silent_attempt_is_failed_as_zombie_and_retried_with_the_next_try():
    d = running(retries=1)
    started_at = d.now
    d.later(seconds=31).tick(full=False)
    zombie = [e.data for e in d.last.events if isinstance(e.data, TaskAttemptZombie)]
    assert len(zombie) == 1
    assert zombie[0].try_number == 1 and zombie[0].last_heartbeat == started_at
    assert "executor e stopped heartbeating at" in zombie[0].reason
    assert any(isinstance(e.data, TaskInstanceUpForRetry) for e in d.last.events)
    # The dead attempt is cancelled wherever it may still run.
    assert [c.data.try_number for c in d.last.control] == [1]
    assert isinstance(d.last.control[0].data, CancelTaskAttempt)
    assert d.last.control[0].data.state == "zombie"
    # The retry (retry_delay 0) is queued right away as try 2.
    assert d.queued() == [("a", -1)] and d.work[("a", -1)].try_number == 2


def test_zombie_without_retries_fails_the_task_and_the_run():
    d = running(retries=0)
    d.later(seconds=40).tick(full=False)
    assert d.states()["a"] == "failed"
    assert d.run().state == "failed"


def test_heartbeats_keep_the_attempt_alive_and_move_the_wake():
    d = running()
    for _ in range(5):
        d.later(seconds=20)
        heartbeat(d, "a")
        assert d.last.events == ()
        assert d.last.wake_at == d.now + TIMEOUT
    d.later(seconds=29).tick(full=False)
    assert d.last.events == ()
    assert d.ti("a").state == "running"


def test_heartbeat_from_another_executor_does_not_keep_the_attempt_alive():
    d = running()
    d.later(seconds=20)
    heartbeat(d, "a", executor_id="someone-else")
    d.later(seconds=11).tick(full=False)
    assert any(isinstance(e.data, TaskAttemptZombie) for e in d.last.events)


def test_late_report_of_the_zombie_attempt_is_dropped():
    d = running(retries=1)
    first = d.work[("a", -1)]
    d.later(seconds=31).tick(full=False)
    state = d.state
    late = d.feed(succeeded(first, d.now, "late"))
    assert late.events == () and late.state == state
    late = d.feed(failed(first, d.now))
    assert late.events == () and late.state == state
    assert d.ti("a").try_number == 2 and d.ti("a").state == "queued"


def test_heartbeat_touches_only_its_attempt():
    # A heartbeat is folded and looked at alone: the outbox marks one instance, and
    # the decision's state differs from the previous one in that instance only.
    d = Driver.of(make_dag({f"t{i}": [] for i in range(50)}))
    d.trigger()
    for i in range(50):
        d.start(f"t{i}")
    before = d.run()
    d.later(seconds=1)
    heartbeat(d, "t7")
    after = d.run()
    changed = [k for k in after.tasks if after.tasks[k] is not before.tasks[k]]
    assert changed == [("t7", -1)]


def test_full_tick_after_recovery_finds_zombies_too():
    d = running()
    item = d.work[("a", -1)]
    later = d.now + timedelta(minutes=5)
    decision = decide(d.state, Tick("d", full=True), now=later, catalog=d.catalog)
    assert [e.data.try_number for e in decision.events if e.data.type == "TaskAttemptZombie"] == [
        item.try_number
    ]


@settings(max_examples=40, deadline=None)
@hgiven(st.lists(st.integers(min_value=1, max_value=45), min_size=1, max_size=12))
def test_an_attempt_is_declared_zombie_exactly_when_silent_past_the_timeout(gaps):
    d = running(retries=3)
    zombie_at = None
    for gap in gaps:
        d.later(seconds=gap).tick(full=False)
        if any(isinstance(e.data, TaskAttemptZombie) for e in d.last.events):
            zombie_at = gap
            break
        heartbeat(d, "a")
    if zombie_at is None:
        assert all(g < 30 for g in gaps)
    else:
        assert zombie_at >= 30
