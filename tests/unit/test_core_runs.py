"""Runs as a whole, given/when/then: setup/teardown and the run's final state,
``depends_on_past``/``wait_for_downstream``, ``max_active_runs``, work items, ticks."""

from __future__ import annotations

from datetime import timedelta

from ledgerflow.common.core import Tick, decide, queued_work
from ledgerflow.common.dagmodel import MapSource, MapSpec

from .core_harness import T0, Driver, dag_of, given, succeeded, task

TD = "all_done_setup_success"


# --------------------------------------------------------------------------- setup/teardown
def setup_teardown(*, work_rule: str = "all_success", fail_dagrun: bool = False):
    # create >> work >> report >> delete, create >> delete (as_teardown(setups=create))
    return dag_of(
        task("create", is_setup=True),
        task("work", "create"),
        task("report", "work", trigger_rule=work_rule),
        task(
            "delete",
            "create",
            "report",
            is_teardown=True,
            trigger_rule=TD,
            on_failure_fail_dagrun=fail_dagrun,
        ),
    )


def test_teardown_runs_after_its_setup_and_the_work_even_when_the_work_failed():
    d = Driver.of(setup_teardown())
    d.trigger()
    d.succeed("create")
    d.fail("work")
    assert d.states() == {
        "create": "success",
        "work": "failed",
        "report": "upstream_failed",
        "delete": "queued",
    }
    d.succeed("delete")
    assert d.run().state == "failed"  # the leaf (report) is upstream_failed


def test_a_failed_setup_fails_its_scope_and_its_teardown_does_not_run():
    d = Driver.of(setup_teardown())
    d.trigger()
    d.fail("create")
    assert d.states() == {
        "create": "failed",
        "work": "upstream_failed",
        "report": "upstream_failed",
        "delete": "upstream_failed",  # all_done_setup_success: no setup succeeded
    }
    assert d.run().state == "failed"


def test_a_failed_setup_fails_a_scoped_task_even_if_its_own_rule_would_run():
    # report (all_done) only sees work (upstream_failed), but its indirect setup failed.
    d = Driver.of(setup_teardown(work_rule="all_done"))
    d.trigger()
    d.fail("create")
    assert d.states()["report"] == "upstream_failed"


def test_a_scoped_task_waits_for_its_indirect_setup():
    # work runs at once (always); work2 only depends on work, but its indirect setup
    # (create, whose teardown is downstream of work2) must succeed first.
    dag = dag_of(
        task("create", is_setup=True),
        task("work", "create", trigger_rule="always"),
        task("work2", "work"),
        task("delete", "create", "work2", is_teardown=True, trigger_rule=TD),
    )
    d = Driver.of(dag)
    d.trigger()
    d.succeed("work")
    assert d.states()["work2"] is None
    d.succeed("create")
    assert d.queued() == [("work2", -1)]


def test_teardown_failure_does_not_fail_the_run():
    d = Driver.of(setup_teardown())
    d.trigger()
    for t in ("create", "work", "report"):
        d.succeed(t)
    d.fail("delete")
    assert d.run().state == "success"


def test_teardown_failure_fails_the_run_with_on_failure_fail_dagrun():
    d = Driver.of(setup_teardown(fail_dagrun=True))
    d.trigger()
    for t in ("create", "work", "report"):
        d.succeed(t)
    d.fail("delete")
    assert d.run().state == "failed"
    assert "delete" in d.log[-1].data.reason


def test_skipped_setup_skips_its_teardown():
    d = Driver.of(setup_teardown())
    d.trigger()
    d.skip("create")
    assert set(d.states().values()) == {"skipped"}
    assert d.run().state == "success"


def test_run_fails_when_any_leaf_fails_even_if_another_succeeds():
    d = Driver.of(dag_of(task("a"), task("b")))
    d.trigger()
    d.succeed("a")
    d.fail("b")
    assert d.run().state == "failed"
    assert d.log[-1].data.reason == "failed or upstream_failed: b"


def test_a_failed_task_with_a_successful_downstream_does_not_fail_the_run():
    d = Driver.of(dag_of(task("a"), task("b", "a", trigger_rule="all_done")))
    d.trigger()
    d.fail("a")
    d.succeed("b")
    assert d.run().state == "success"  # Airflow looks at the leaves only


# --------------------------------------------------------------------------- depends_on_past
def two_runs(*tasks, **dag_kw):
    d = Driver.of(dag_of(*tasks, **dag_kw))
    d.trigger("r1", logical_date=T0)
    d.later(seconds=1)
    d.trigger("r2", logical_date=T0 + timedelta(days=1))
    return d


def test_depends_on_past_waits_for_the_same_task_of_the_previous_run():
    d = two_runs(task("a", depends_on_past=True))
    assert d.ti("a", run_id="r1").state == "queued"  # the first run: nothing to wait for
    assert d.ti("a", run_id="r2").state is None
    d.run_id = "r1"
    d.succeed("a")
    assert d.queued() == [("a", -1)]
    assert d.last.work[0].data.run_id == "r2"


def test_depends_on_past_is_released_by_a_skip_but_not_by_a_failure():
    d = two_runs(task("a", depends_on_past=True))
    d.run_id = "r1"
    d.skip("a")
    assert d.ti("a", run_id="r2").state == "queued"
    d = two_runs(task("a", depends_on_past=True))
    d.run_id = "r1"
    d.fail("a")
    assert d.ti("a", run_id="r2").state is None
    assert d.tick().events == ()  # and stays waiting


def test_the_previous_run_is_by_logical_date_not_by_trigger_order():
    d = Driver.of(dag_of(task("a", depends_on_past=True)))
    d.trigger("late", logical_date=T0 + timedelta(days=1))
    assert d.ti("a", run_id="late").state == "queued"  # the only run so far
    d.trigger("early", logical_date=T0)
    # "early" comes first by logical date, and it has no previous run.
    assert d.ti("a", run_id="early").state == "queued"


def test_wait_for_downstream_waits_for_the_previous_runs_direct_downstreams():
    d = two_runs(task("a", wait_for_downstream=True), task("b", "a"), task("c", "b"))
    d.run_id = "r1"
    d.succeed("a")
    assert d.ti("a", run_id="r2").state is None  # r1's b is not done yet
    d.succeed("b")
    assert d.ti("a", run_id="r2").state == "queued"  # c need not be done


def test_depends_on_past_for_a_task_new_in_this_version_uses_ignore_first():
    d = Driver.of(dag_of(task("a")))
    d.trigger("r1", logical_date=T0)
    d.catalog.add(dag_of(task("a"), task("new", depends_on_past=True)), version_id="v2")
    d.later(seconds=1)
    d.trigger("r2", logical_date=T0 + timedelta(days=1))
    assert d.ti("new", run_id="r2").state == "queued"


# --------------------------------------------------------------------------- max_active_runs
def test_max_active_runs_holds_runs_queued_until_one_finishes():
    d = Driver.of(dag_of(task("a"), max_active_runs=1))
    d.trigger("r1")
    d.trigger("r2")
    assert d.run("r2").state == "queued"
    d.run_id = "r1"
    d.succeed("a")
    assert d.types() == [
        "DagRunSucceeded",
        "DagRunStarted",
        "TaskInstanceQueued",
    ]
    assert d.run("r2").state == "running"


# --------------------------------------------------------------------------- work items
def test_work_item_carries_every_xcom_of_the_ancestors_and_nothing_else():
    dag = dag_of(
        task("a"),
        task("side"),
        task("b", "a"),
        task("c", "b"),
    )
    d = Driver.of(dag)
    d.trigger(logical_date=T0)
    d.succeed("a", value=1, xcoms={"extra": {"k": "v"}, "another": 3})
    d.succeed("side", value="not an ancestor")
    d.succeed("b", value=None, xcoms={"only": "key"})
    item = d.work[("c", -1)]
    assert [(x.task_id, x.map_index, x.key, x.value) for x in item.xcoms] == [
        ("a", -1, "return_value", 1),
        ("a", -1, "another", 3),
        ("a", -1, "extra", {"k": "v"}),
        ("b", -1, "only", "key"),
    ]
    assert item.upstream_xcoms == {"a": 1}  # deprecated, kept for schema-1 readers
    assert item.run_type == "manual"
    assert item.logical_date == item.data_interval_start == item.data_interval_end == T0
    assert item.map_length is None


def test_work_items_of_a_mapped_task_carry_its_length():
    dag = dag_of(task("m", mapped=MapSpec(sources=(MapSource(arg="x", literal_length=2),))))
    d = Driver.of(dag)
    d.trigger()
    assert [(w.data.map_index, w.data.map_length) for w in d.last.work] == [(0, 2), (1, 2)]


def test_queued_work_rebuilds_the_same_work_items_after_a_crash():
    dag = dag_of(task("a"), task("b", "a"), task("c", "a"))
    d = Driver.of(dag)
    d.trigger()
    decision = d.succeed("a", value=[1])
    rebuilt = queued_work(given(*d.log), now=d.now, catalog=d.catalog)
    assert [w.id for w in rebuilt] == [w.id for w in decision.work]
    assert [w.data for w in rebuilt] == [w.data for w in decision.work]


# --------------------------------------------------------------------------- ticks
def test_a_timer_tick_looks_only_at_timers_and_a_full_tick_at_everything():
    d = Driver.of(dag_of(task("a"), task("b", "a")))
    d.trigger()
    d.start("a")
    # A state folded without deciding (as after a replay): b's upstream has succeeded.
    replayed = given(*d.log, succeeded(d.work[("a", -1)], d.now))
    timers_only = decide(replayed, Tick("d", full=False), now=d.now, catalog=d.catalog)
    assert timers_only.events == ()
    full = decide(replayed, Tick("d"), now=d.now, catalog=d.catalog)
    assert [e.data.type for e in full.events] == ["TaskInstanceQueued"]


def test_a_dag_without_tasks_runs_to_success():
    d = Driver.of(dag_of())
    assert [e.data.type for e in d.trigger().events] == [
        "DagRunQueued",
        "DagRunStarted",
        "DagRunSucceeded",
    ]
