"""Cancels due again after a scheduler restart (core.cancels): replaying the run log
names the attempts a clear, mark or zombie verdict overtook and that never reported,
with the same cancel ids the live scheduler used."""

from __future__ import annotations

from typing import Any

from ledgerflow.common.core.cancels import OpenAttempts
from ledgerflow.common.events import (
    ClearTaskInstances,
    Envelope,
    SetTaskInstanceState,
    deterministic_id,
    make_envelope,
)

from .core_harness import Driver, make_dag, succeeded


def command(d: Driver, data: Any, name: str) -> Envelope:
    return make_envelope(
        data,
        id=deterministic_id("cmd", name),
        source="ledgerflow/api",
        time=d.now,
        aggregate_key="d",
    )


def chain(**kw: Any) -> Driver:
    d = Driver.of(make_dag({"a": [], "b": ["a"]}, **kw))
    d.trigger()
    return d


def replayed(d: Driver) -> list[tuple[str, int, str, str]]:
    open_attempts = OpenAttempts()
    for env in d.log:
        open_attempts.note(env)
    return [
        (c.data.task_id, c.data.try_number, c.data.state, c.id)
        for c in open_attempts.due(d.state, now=d.now)
    ]


def test_nothing_is_due_for_live_or_finished_attempts():
    d = chain()
    d.succeed("a")
    d.start("b")
    assert replayed(d) == []


def test_a_cleared_running_attempt_is_cancelled_again_with_the_same_id():
    d = chain()
    d.start("a")
    first = d.work[("a", -1)]
    d.feed(command(d, ClearTaskInstances(dag_id="d", run_ids=("r1",), task_ids=("a",)), "c1"))
    sent = [(c.data.task_id, c.data.try_number, c.id) for c in d.last.control]
    assert [(t, n, "cleared", i) for t, n, i in sent] == replayed(d)
    # The next try is live, not cancelled; once the killed attempt reports, none is due.
    d.feed(succeeded(first, d.now, "late"))
    assert replayed(d) == []


def test_a_running_attempt_marked_success_is_cancelled_as_success():
    d = chain()
    d.start("a")
    data = SetTaskInstanceState(dag_id="d", run_id="r1", task_id="a", new_state="success")
    d.feed(command(d, data, "m1"))
    assert [(t, n, s) for t, n, s, _ in replayed(d)] == [("a", 1, "success")]


def test_a_zombie_attempt_is_cancelled_until_it_reports():
    d = chain(retries=1, retry_delay=0)
    d.start("a")
    d.later(seconds=120).tick()
    assert [e.data.type for e in d.last.events][0] == "TaskAttemptZombie"
    assert [(t, n) for t, n, _, _ in replayed(d)] == [("a", 1)]
