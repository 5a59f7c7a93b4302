"""The task model beyond trigger rules, given/when/then: branching, short-circuit,
mapping, skips reported by tasks, retries and backoff, reschedule-mode sensors."""

from __future__ import annotations

import hashlib
import math
from datetime import timedelta

from ledgerflow.common.core.retry import retry_delay
from ledgerflow.common.dagmodel import MapSource, MapSpec, SensorSpec
from ledgerflow.common.events import (
    TaskInstanceFailedByScheduler,
    TaskInstanceMapExpanded,
    TaskInstanceSkipped,
    TaskInstanceUpForRetry,
)

from .core_harness import T0, Driver, dag_of, given, task


def skip_reasons(d: Driver) -> dict[str, str]:
    return {
        e.data.task_id + (f"[{e.data.map_index}]" if e.data.map_index >= 0 else ""): e.data.reason
        for e in d.log
        if isinstance(e.data, TaskInstanceSkipped)
    }


# --------------------------------------------------------------------------- branching
def branch_dag():
    #   branch -> a -> a2 -> join(none_failed_min_one_success)
    #          -> b ------->
    #          -> join (an empty branch, as in Airflow's docs)
    return dag_of(
        task("branch", is_branch=True),
        task("a", "branch"),
        task("a2", "a"),
        task("b", "branch"),
        task("join", "a2", "b", "branch", trigger_rule="none_failed_min_one_success"),
    )


def test_branch_skips_direct_downstreams_it_does_not_follow():
    d = Driver.of(branch_dag())
    d.trigger()
    d.succeed("branch", follow=("a",))
    assert d.queued() == [("a", -1)]
    assert d.states()["b"] == "skipped"
    assert skip_reasons(d)["b"] == "branch branch did not follow b"
    # join is downstream of the followed branch, so it is not skipped by the branch
    # (Airflow's skip_all_except); its trigger rule waits for a2.
    assert d.states()["join"] is None
    d.succeed("a")
    d.succeed("a2")
    assert d.queued() == [("join", -1)]
    d.succeed("join")
    assert d.run().state == "success"


def test_branch_following_nothing_skips_every_direct_downstream():
    d = Driver.of(branch_dag())
    d.trigger()
    d.succeed("branch", follow=())
    assert d.states() == {
        "branch": "success",
        "a": "skipped",
        "a2": "skipped",  # by its trigger rule (all_success over a skipped upstream)
        "b": "skipped",
        "join": "skipped",
    }
    assert d.run().state == "success"


def test_branch_following_an_empty_path_runs_the_join_directly():
    d = Driver.of(branch_dag())
    d.trigger()
    d.succeed("branch", follow=("join",))
    assert d.states()["a"] == "skipped" and d.states()["b"] == "skipped"
    assert d.queued() == [("join", -1)]  # a2 skipped, b skipped, branch succeeded


def test_a_redelivered_branch_success_skips_nothing_twice():
    d = Driver.of(branch_dag())
    d.trigger()
    d.succeed("branch", follow=("a",))
    again = d.tick()
    assert again.events == () and again.work == ()


# --------------------------------------------------------------------------- short-circuit
def chain_dag():
    return dag_of(
        task("sc"),
        task("a", "sc"),
        task("b", "a", trigger_rule="all_done"),
        task("c", "b"),
        task("td", "sc", "c", is_teardown=True, trigger_rule="all_done_setup_success"),
    )


def test_short_circuit_all_skips_every_downstream_task_regardless_of_trigger_rules():
    d = Driver.of(chain_dag())
    d.trigger()
    d.succeed("sc", short_circuit="all")
    states = d.states()
    assert states["a"] == states["b"] == states["c"] == "skipped"
    assert skip_reasons(d)["b"] == "short-circuited by sc (all)"
    assert d.queued() == [("td", -1)]  # teardowns still run


def test_short_circuit_direct_skips_direct_downstreams_and_lets_rules_decide_the_rest():
    d = Driver.of(chain_dag())
    d.trigger()
    d.succeed("sc", short_circuit="direct")
    assert d.states()["a"] == "skipped"
    assert d.queued() == [("b", -1)]  # all_done: runs after a skipped upstream


# --------------------------------------------------------------------------- task-reported skips
def test_a_task_that_skips_itself_is_skipped_and_so_are_its_all_success_downstreams():
    d = Driver.of(dag_of(task("a"), task("b", "a"), task("c", "a", trigger_rule="none_failed")))
    d.trigger()
    d.skip("a")
    assert d.states() == {"a": "skipped", "b": "skipped", "c": "queued"}
    assert d.ti("a").reason == "AirflowSkipException"


# --------------------------------------------------------------------------- mapping
def mapped(*sources: MapSource, kind: str = "expand") -> MapSpec:
    return MapSpec(kind=kind, sources=sources)  # type: ignore[arg-type]


def test_mapping_over_a_literal_expands_at_once():
    d = Driver.of(dag_of(task("m", mapped=mapped(MapSource(arg="x", literal_length=3)))))
    d.trigger()
    assert d.types() == [
        "DagRunQueued",
        "DagRunStarted",
        "TaskInstanceMapExpanded",
        "TaskInstanceQueued",
        "TaskInstanceQueued",
        "TaskInstanceQueued",
    ]
    assert d.queued() == [("m", 0), ("m", 1), ("m", 2)]
    assert {d.work[("m", i)].map_length for i in range(3)} == {3}
    for i in range(3):
        d.succeed("m", i)
    assert d.run().state == "success"


def test_mapping_over_an_upstream_xcom_waits_for_it_and_uses_its_length():
    dag = dag_of(
        task("src"),
        task("m", "src", mapped=mapped(MapSource(arg="x", task_id="src"))),
        task("after", "m"),
    )
    d = Driver.of(dag)
    d.trigger()
    assert d.states() == {"src": "queued", "m": None, "after": None}
    d.succeed("src", value={"a": 1, "b": 2})
    expanded = [e.data for e in d.last.events if isinstance(e.data, TaskInstanceMapExpanded)]
    assert [(x.task_id, x.map_index, x.length) for x in expanded] == [("m", -1, 2)]
    assert d.queued() == [("m", 0), ("m", 1)]
    d.succeed("m", 0, value="x0")
    assert d.ti("after").state is None  # the downstream sees both indexes
    d.succeed("m", 1, value="x1")
    assert d.queued() == [("after", -1)]
    assert [(x.task_id, x.map_index, x.value) for x in d.work[("after", -1)].xcoms] == [
        ("src", -1, {"a": 1, "b": 2}),
        ("m", 0, "x0"),
        ("m", 1, "x1"),
    ]


def test_mapping_over_a_mapped_upstream_counts_its_indexes_with_values():
    dag = dag_of(
        task("m1", mapped=mapped(MapSource(arg="x", literal_length=3))),
        task("m2", "m1", mapped=mapped(MapSource(arg="y", task_id="m1")), trigger_rule="all_done"),
    )
    d = Driver.of(dag)
    d.trigger()
    d.succeed("m1", 0, value="a")
    d.succeed("m1", 1, value=None)  # pushed nothing
    assert d.ti("m2").state is None
    d.succeed("m1", 2, value="c")
    assert d.run().map_lengths["m2"] == 2
    assert d.queued() == [("m2", 0), ("m2", 1)]


def test_mapping_over_zero_values_skips_the_task():
    dag = dag_of(
        task("src"),
        task("m", "src", mapped=mapped(MapSource(arg="x", task_id="src"))),
        task("after", "m"),
    )
    d = Driver.of(dag)
    d.trigger()
    d.succeed("src", value=[])
    assert d.types()[-4:] == [
        "TaskInstanceMapExpanded",
        "TaskInstanceSkipped",
        "TaskInstanceSkipped",
        "DagRunSucceeded",
    ]
    assert skip_reasons(d)["m"] == "mapped over zero values"
    assert d.states() == {"src": "success", "m": "skipped", "after": "skipped"}


def test_mapping_over_a_value_that_is_not_a_list_or_dict_fails_the_mapped_task():
    dag = dag_of(task("src"), task("m", "src", mapped=mapped(MapSource(arg="x", task_id="src"))))
    d = Driver.of(dag)
    d.trigger()
    d.succeed("src", value=42)
    failures = [e.data for e in d.log if isinstance(e.data, TaskInstanceFailedByScheduler)]
    assert len(failures) == 1 and failures[0].map_index == -1
    assert "cannot map over XCom 'return_value' of src" in failures[0].reason
    assert "int" in failures[0].reason
    assert d.run().state == "failed"


def test_expand_kwargs_maps_over_its_list_of_dicts():
    dag = dag_of(
        task("src"),
        task("m", "src", mapped=mapped(MapSource(arg="", task_id="src"), kind="expand_kwargs")),
    )
    d = Driver.of(dag)
    d.trigger()
    d.succeed("src", value=[{"a": 1}, {"a": 2}, {"a": 3}, {"a": 4}])
    assert d.queued() == [("m", i) for i in range(4)]


def test_expand_over_several_arguments_maps_over_their_cross_product():
    dag = dag_of(
        task("src"),
        task(
            "m",
            "src",
            mapped=mapped(
                MapSource(arg="x", task_id="src", key="files"),
                MapSource(arg="y", literal_length=3),
            ),
        ),
    )
    d = Driver.of(dag)
    d.trigger()
    d.succeed("src", xcoms={"files": ["a", "b"]})
    assert d.run().map_lengths["m"] == 6
    assert len(d.queued()) == 6


def test_a_mapped_task_whose_source_failed_is_upstream_failed_even_with_all_done():
    dag = dag_of(
        task("src"),
        task("m", "src", mapped=mapped(MapSource(arg="x", task_id="src")), trigger_rule="all_done"),
    )
    d = Driver.of(dag)
    d.trigger()
    d.fail("src")
    assert d.states() == {"src": "failed", "m": "upstream_failed"}
    assert d.run().state == "failed"


def test_a_mapped_task_skipped_by_its_trigger_rule_is_skipped_as_a_whole():
    dag = dag_of(task("src"), task("m", "src", mapped=mapped(MapSource(arg="x", task_id="src"))))
    d = Driver.of(dag)
    d.trigger()
    d.skip("src")
    assert d.states() == {"src": "skipped", "m": "skipped"}
    assert d.run().state == "success"


def test_each_map_index_retries_on_its_own():
    dag = dag_of(
        task(
            "m",
            mapped=mapped(MapSource(arg="x", literal_length=2)),
            retries=1,
            retry_delay_seconds=0,
        )
    )
    d = Driver.of(dag)
    d.trigger()
    d.fail("m", 1)
    assert d.queued() == [("m", 1)] and d.work[("m", 1)].try_number == 2
    d.succeed("m", 0)
    d.succeed("m", 1)
    assert d.run().state == "success"


# --------------------------------------------------------------------------- retries
def test_retry_waits_retry_delay_after_the_failed_attempt_ended():
    d = Driver.of(dag_of(task("a", retries=2, retry_delay_seconds=30)))
    d.trigger()
    d.later(seconds=5).fail("a")
    retry = [e.data for e in d.last.events if isinstance(e.data, TaskInstanceUpForRetry)][0]
    assert retry.retry_at == T0 + timedelta(seconds=35)
    assert d.last.wake_at == retry.retry_at
    d.later(seconds=29)
    assert d.tick(full=False).events == ()
    d.later(seconds=1)
    assert d.tick(full=False).work[0].data.try_number == 2


def test_exponential_backoff_follows_airflows_formula():
    t = task("a", retries=5, retry_delay_seconds=10, retry_exponential_backoff=2.0)
    for try_number in (1, 2, 3, 4):
        delay = retry_delay(t, dag_id="d", logical_date=None, try_number=try_number)
        floor = math.ceil(10 * 2 ** (try_number - 1))
        digest = hashlib.sha1(f"d#a#None#{try_number}".encode()).hexdigest()
        assert delay == timedelta(seconds=floor + int(digest, 16) % floor)
        assert floor <= delay.total_seconds() < 2 * floor


def test_backoff_is_capped_by_max_retry_delay_and_a_day():
    t = task("a", retry_delay_seconds=60, retry_exponential_backoff=2.0, max_retry_delay_seconds=90)
    assert retry_delay(t, dag_id="d", logical_date=None, try_number=5) == timedelta(seconds=90)
    t = task("a", retry_delay_seconds=3600, retry_exponential_backoff=2.0)
    assert retry_delay(t, dag_id="d", logical_date=None, try_number=30) == timedelta(days=1)


def test_without_backoff_max_retry_delay_does_not_apply():
    # Airflow applies max_retry_delay only to the exponential delay.
    t = task("a", retry_delay_seconds=600, max_retry_delay_seconds=60)
    assert retry_delay(t, dag_id="d", logical_date=None, try_number=3) == timedelta(seconds=600)


def test_backoff_multiplier_other_than_two():
    t = task("a", retry_delay_seconds=10, retry_exponential_backoff=3.0)
    delay = retry_delay(t, dag_id="d", logical_date=None, try_number=3)
    assert 90 <= delay.total_seconds() < 180


def test_retry_times_are_the_same_when_decided_again():
    dag = dag_of(task("a", retries=3, retry_delay_seconds=7, retry_exponential_backoff=2.0))
    d = Driver.of(dag)
    d.trigger()
    d.later(seconds=3).fail("a")
    state_before = given(*d.log[:-1])
    again = Driver(catalog=d.catalog, state=state_before, now=d.now + timedelta(hours=1))
    redecided = again.tick()  # an hour later: the retry is also due
    assert [e.data.type for e in redecided.events] == [
        "TaskInstanceUpForRetry",
        "TaskInstanceQueued",
    ]
    assert redecided.events[0].id == d.log[-1].id
    assert redecided.events[0].data.retry_at == d.log[-1].data.retry_at


# --------------------------------------------------------------------------- sensors
def sensor(**kw):
    spec = SensorSpec(mode="reschedule", poke_interval_seconds=60, **kw)
    return dag_of(task("s", operator="FileSensor", sensor=spec, retries=1), task("after", "s"))


def test_a_reschedule_requeues_the_sensor_at_the_date_with_the_next_try_number():
    d = Driver.of(sensor(timeout_seconds=3600))
    d.trigger()
    d.reschedule("s", seconds=60)
    assert d.ti("s").state == "up_for_reschedule"
    assert d.last.wake_at == T0 + timedelta(seconds=60)
    d.later(seconds=59)
    assert d.tick(full=False).events == ()
    d.later(seconds=1)
    assert d.tick(full=False).work[0].data.try_number == 2
    d.reschedule("s", seconds=60)
    d.later(seconds=60).tick(full=False)
    d.succeed("s")
    ti = d.ti("s")
    assert (ti.state, ti.try_number, ti.reschedules) == ("success", 3, 2)
    assert d.queued() == [("after", -1)]


def test_reschedules_do_not_use_up_retries():
    d = Driver.of(sensor(timeout_seconds=3600))
    d.trigger()
    for _ in range(3):
        d.reschedule("s", seconds=10)
        d.later(seconds=10).tick(full=False)
    d.fail("s")  # the first real failure: retries=1 still allows one retry
    assert "TaskInstanceUpForRetry" in d.types()


def test_a_sensor_times_out_measured_from_its_first_poke():
    d = Driver.of(sensor(timeout_seconds=100))
    d.trigger()
    d.later(seconds=1)
    d.reschedule("s", seconds=60)  # first poke at T0+1s
    assert d.last.wake_at == T0 + timedelta(seconds=61)
    d.later(seconds=60).tick(full=False)
    d.reschedule("s", seconds=60)  # asks for T0+121s, but the timeout is at T0+101s
    assert d.last.wake_at == T0 + timedelta(seconds=101)
    d.later(seconds=40)
    decision = d.tick(full=False)
    assert [e.data.type for e in decision.events] == [
        "TaskInstanceFailedByScheduler",
        "TaskInstanceUpstreamFailed",
        "DagRunFailed",
    ]
    reason = decision.events[0].data.reason
    assert reason.startswith("sensor timed out: 100s since its first poke") and "100s" in reason
    assert d.ti("s").state == "failed"  # no retry, as in Airflow


def test_a_soft_fail_sensor_is_skipped_when_it_times_out():
    d = Driver.of(sensor(timeout_seconds=30, soft_fail=True))
    d.trigger()
    d.reschedule("s", seconds=60)
    d.later(seconds=30)
    d.tick(full=False)
    assert d.states() == {"s": "skipped", "after": "skipped"}
    assert skip_reasons(d)["s"].endswith("(soft_fail)")
    assert d.run().state == "success"


def test_a_sensor_retry_restarts_its_timeout():
    d = Driver.of(sensor(timeout_seconds=100))
    d.trigger()
    d.reschedule("s", seconds=60)
    d.later(seconds=60).tick(full=False)
    d.fail("s")  # try 2 fails: up for retry (retries=1)
    d.later(seconds=400).tick(full=False)  # retry after its delay
    assert d.ti("s").state == "queued"
    d.reschedule("s", seconds=60)  # the first poke of the new cycle
    d.later(seconds=60).tick(full=False)
    assert d.ti("s").state == "queued"
