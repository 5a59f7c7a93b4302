"""Clear and mark, given/when/then: commands in, facts and cancels out."""

from __future__ import annotations

from typing import Any

from ledgerflow.common.core.selection import clear_selection
from ledgerflow.common.core.topology import topology
from ledgerflow.common.events import (
    ClearTaskInstances,
    Envelope,
    SetDagRunState,
    SetTaskInstanceState,
    TaskInstanceCleared,
    deterministic_id,
    make_envelope,
)

from .core_harness import Driver, make_dag, succeeded


def command(data: Any, name: str = "c1") -> Envelope:
    return make_envelope(
        data,
        id=deterministic_id("cmd", name),
        source="ledgerflow/api",
        time=data_time,
        aggregate_key="d",
    )


data_time = Driver.of(make_dag({"a": []})).now


def chain(**kw: Any) -> Driver:
    d = Driver.of(make_dag({"a": [], "b": ["a"], "c": ["b"]}, **kw))
    d.trigger()
    return d


def clear(d: Driver, name: str = "c1", **kw: Any):
    return d.feed(command(ClearTaskInstances(dag_id="d", run_ids=("r1",), **kw), name))


def mark(d: Driver, task_id: str, state: str, name: str = "m1", **kw: Any):
    return d.feed(
        command(
            SetTaskInstanceState(dag_id="d", run_id="r1", task_id=task_id, new_state=state, **kw),
            name,
        )
    )


# --------------------------------------------------------------------------- clear
def test_clearing_a_running_task_kills_it_and_queues_the_next_try():
    d = chain()
    d.start("a")
    first = d.work[("a", -1)]
    clear(d, task_ids=("a",))
    assert d.types()[0] == "TaskInstanceCleared"
    assert [(c.data.try_number, c.data.state) for c in d.last.control] == [(1, "cleared")]
    assert d.queued() == [("a", -1)] and d.work[("a", -1)].try_number == 2
    # The killed attempt's report is dropped.
    late = d.feed(succeeded(first, d.now, "late"))
    assert late.events == () and d.ti("a").state == "queued"


def test_clearing_a_finished_run_reopens_it_and_reruns_with_fresh_retries():
    d = chain(retries=1, retry_delay=0)
    d.succeed("a")
    d.fail("b")
    d.fail("b")  # retries used up: b failed, c upstream_failed, run failed
    assert d.run().state == "failed"
    clear(d, task_ids=("b",), include_downstream=True)
    assert d.types()[:3] == ["DagRunStateSet", "TaskInstanceCleared", "TaskInstanceCleared"]
    assert d.run().state == "running"
    assert d.queued() == [("b", -1)] and d.work[("b", -1)].try_number == 3
    d.fail("b")  # a fresh set of retries: this failure is retried (delay 0: at once)
    assert d.ti("b").state == "queued" and d.ti("b").try_number == 4
    d.succeed("b")
    d.succeed("c")
    assert d.run().state == "success"


def test_only_failed_clears_failed_and_upstream_failed_only():
    d = chain()
    d.succeed("a")
    d.fail("b")
    cleared = {
        e.data.task_id
        for e in clear(d, only_failed=True).events
        if isinstance(e.data, TaskInstanceCleared)
    }
    assert cleared == {"b", "c"}


def test_a_redelivered_clear_does_nothing():
    d = chain()
    d.succeed("a")
    clear(d, task_ids=("a",))
    assert d.queued() == [("a", -1)]
    again = clear(d, task_ids=("a",))
    assert again.events == () and again.work == ()


def test_selection_rules_match_airflow():
    topo = topology(make_dag({"a": [], "b": ["a"], "c": ["b"], "x": []}))
    states = {
        ("a", -1): "success",
        ("b", -1): "failed",
        ("c", -1): "upstream_failed",
        ("x", -1): None,
    }
    assert clear_selection(topo, states, task_ids=["b"]) == [("b", -1)]
    assert clear_selection(topo, states, task_ids=["b"], include_upstream=True) == [
        ("a", -1),
        ("b", -1),
    ]
    assert clear_selection(topo, states, task_ids=[("b", -1)], include_downstream=True) == [
        ("b", -1),
        ("c", -1),
    ]
    assert clear_selection(topo, states, only_failed=True) == [("b", -1), ("c", -1)]
    assert clear_selection(topo, states, only_running=True) == []


# --------------------------------------------------------------------------- mark
def test_marking_a_running_task_success_kills_it_and_the_mark_stays():
    d = chain()
    d.start("a")
    first = d.work[("a", -1)]
    mark(d, "a", "success")
    assert [(c.data.try_number, c.data.state) for c in d.last.control] == [(1, "success")]
    assert d.ti("a").state == "success"
    assert d.queued() == [("b", -1)]  # downstream goes on
    # The executor reports the killed attempt as failed: the mark is not overridden.
    from .core_harness import failed

    late = d.feed(failed(first, d.now))
    assert late.events == () and d.ti("a").state == "success"


def test_marking_success_in_a_failed_run_clears_failed_downstream_and_resumes():
    d = chain()
    d.succeed("a")
    d.fail("b")
    assert d.run().state == "failed"
    mark(d, "b", "success")
    assert d.states()["b"] == "success"
    assert d.queued() == [("c", -1)]
    d.succeed("c")
    assert d.run().state == "success"


def test_marking_failed_with_downstream_marks_them_too():
    d = chain()
    d.succeed("a")
    mark(d, "b", "failed", include_downstream=True)
    assert d.states() == {"a": "success", "b": "failed", "c": "failed"}
    assert d.run().state == "failed"


def test_mark_with_future_reaches_later_runs():
    d = chain()
    d.trigger("r2")
    mark(d, "a", "skipped", include_future=True)
    assert d.run("r1").ti("a").state == "skipped"
    assert d.run("r2").ti("a").state == "skipped"


# --------------------------------------------------------------------------- run state
def test_marking_a_run_success_marks_unfinished_instances_and_kills_running():
    d = chain()
    d.start("a")
    d.feed(command(SetDagRunState(dag_id="d", run_id="r1", state="success"), "s1"))
    assert d.run().state == "success"
    assert set(d.states().values()) == {"success"}
    assert [c.data.task_id for c in d.last.control] == ["a"]


def test_marking_a_run_failed_fails_running_and_skips_the_rest():
    d = chain()
    d.start("a")
    d.feed(command(SetDagRunState(dag_id="d", run_id="r1", state="failed"), "s1"))
    assert d.run().state == "failed"
    assert d.states() == {"a": "failed", "b": "skipped", "c": "skipped"}


def test_marking_a_finished_run_queued_runs_it_to_its_end_again():
    d = chain()
    d.succeed("a")
    d.succeed("b")
    d.succeed("c")
    d.feed(command(SetDagRunState(dag_id="d", run_id="r1", state="queued"), "s1"))
    assert d.types() == ["DagRunStateSet", "DagRunStarted", "DagRunSucceeded"]
