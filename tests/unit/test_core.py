"""The pure core: given these events, when this arrives, then exactly these come out."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis import given as hgiven
from hypothesis import strategies as st
from ledgerflow.common.core import Tick, decide, empty, evolve
from ledgerflow.common.dagmodel import MapSource, MapSpec, SensorSpec
from ledgerflow.common.events import RunTaskAttempt, SetDagPaused, make_envelope

from .core_harness import (
    T0,
    FakeCatalog,
    Report,
    Simulation,
    catalog_of,
    dag_of,
    failed,
    given,
    make_dag,
    started,
    succeeded,
    task,
    trigger,
)

DIAMOND = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}


def types(decision) -> list[str]:
    return [e.data.type for e in decision.events]


def work_of(decision) -> list[tuple[str, int]]:
    return [(w.data.task_id, w.data.try_number) for w in decision.work]


def catalog_with(edges=DIAMOND, **kw) -> FakeCatalog:
    c = FakeCatalog()
    c.add(make_dag(edges, **kw))
    return c


# --------------------------------------------------------------------------- given/when/then
def test_trigger_queues_run_starts_it_and_queues_roots():
    decision = decide(empty("d"), trigger(), now=T0, catalog=catalog_with())
    assert types(decision) == ["DagRunQueued", "DagRunStarted", "TaskInstanceQueued"]
    assert work_of(decision) == [("a", 1)]
    run = decision.state.runs["r1"]
    assert run.state == "running" and run.version_id == "v1"
    # Each work item follows the event that announces it, and is caused by it.
    assert decision.work[0].causation_id == decision.events[-1].id


def test_trigger_for_unknown_dag_is_rejected_not_raised():
    decision = decide(empty("d"), trigger(), now=T0, catalog=FakeCatalog())
    assert types(decision) == ["TriggerRejected"]
    assert "not known" in decision.events[0].data.reason


def test_duplicate_run_id_from_another_command_is_rejected():
    cat = catalog_with()
    state = decide(empty("d"), trigger(), now=T0, catalog=cat).state
    decision = decide(state, trigger(command_id="other"), now=T0, catalog=cat)
    assert types(decision) == ["TriggerRejected"]


def test_redelivered_trigger_command_does_nothing():
    cat = catalog_with()
    state = decide(empty("d"), trigger(), now=T0, catalog=cat).state
    decision = decide(state, trigger(), now=T0, catalog=cat)
    assert decision.events == () and decision.work == ()


def test_success_of_root_queues_both_branches_then_join_waits_for_both():
    cat = catalog_with()
    d0 = decide(empty("d"), trigger(), now=T0, catalog=cat)
    a = d0.work[0].data
    s = decide(d0.state, started(a, T0), now=T0, catalog=cat).state
    d1 = decide(s, succeeded(a, T0, value=41), now=T0, catalog=cat)
    assert work_of(d1) == [("b", 1), ("c", 1)]
    assert d1.work[0].data.upstream_xcoms == {"a": 41}
    b, c = (w.data for w in d1.work)
    d2 = decide(d1.state, succeeded(b, T0), now=T0, catalog=cat)
    assert work_of(d2) == []  # d still waits for c
    d3 = decide(d2.state, succeeded(c, T0), now=T0, catalog=cat)
    assert work_of(d3) == [("d", 1)]


def test_failed_attempt_with_retries_goes_up_for_retry_then_requeues_when_due():
    cat = catalog_with({"a": []}, retries=1, retry_delay=30)
    d0 = decide(empty("d"), trigger(), now=T0, catalog=cat)
    a = d0.work[0].data
    d1 = decide(d0.state, failed(a, T0), now=T0, catalog=cat)
    assert types(d1) == ["TaskInstanceUpForRetry"]
    assert d1.wake_at == T0 + timedelta(seconds=30)
    early = decide(d1.state, Tick("d"), now=T0 + timedelta(seconds=29), catalog=cat)
    assert early.events == ()
    due = decide(d1.state, Tick("d"), now=T0 + timedelta(seconds=30), catalog=cat)
    assert types(due) == ["TaskInstanceQueued"] and work_of(due) == [("a", 2)]


def test_failure_without_retries_fails_task_downstream_and_run():
    cat = catalog_with({"a": [], "b": ["a"]})
    d0 = decide(empty("d"), trigger(), now=T0, catalog=cat)
    d1 = decide(d0.state, failed(d0.work[0].data, T0), now=T0, catalog=cat)
    assert types(d1) == ["TaskInstanceFailed", "TaskInstanceUpstreamFailed", "DagRunFailed"]
    assert d1.state.runs["r1"].state == "failed"


def test_non_retryable_failure_is_not_retried():
    cat = catalog_with({"a": []}, retries=3)
    d0 = decide(empty("d"), trigger(), now=T0, catalog=cat)
    d1 = decide(d0.state, failed(d0.work[0].data, T0, retryable=False), now=T0, catalog=cat)
    assert types(d1) == ["TaskInstanceFailed", "DagRunFailed"]


def test_stale_report_of_an_older_attempt_is_dropped():
    cat = catalog_with({"a": []}, retries=1, retry_delay=0)
    d0 = decide(empty("d"), trigger(), now=T0, catalog=cat)
    a1 = d0.work[0].data
    d2 = decide(d0.state, failed(a1, T0), now=T0, catalog=cat)
    assert types(d2) == ["TaskInstanceUpForRetry", "TaskInstanceQueued"]  # zero delay: at once
    assert work_of(d2) == [("a", 2)]
    late = decide(d2.state, succeeded(a1, T0), now=T0, catalog=cat)  # try 1 reports again
    assert late.events == () and late.state == d2.state


def test_paused_dag_queues_runs_but_starts_none_until_unpaused():
    cat = catalog_with()
    pause = make_envelope(
        SetDagPaused(dag_id="d", is_paused=True), id="p1", source="api", time=T0, aggregate_key="d"
    )
    s = decide(empty("d"), pause, now=T0, catalog=cat).state
    d = decide(s, trigger(), now=T0, catalog=cat)
    assert types(d) == ["DagRunQueued"]
    unpause = make_envelope(
        SetDagPaused(dag_id="d", is_paused=False), id="p2", source="api", time=T0, aggregate_key="d"
    )
    d2 = decide(d.state, unpause, now=T0, catalog=cat)
    assert types(d2) == ["DagPauseChanged", "DagRunStarted", "TaskInstanceQueued"]


def test_whole_diamond_succeeds_with_one_retry():
    cat = catalog_with(DIAMOND, retries=1, retry_delay=0)
    sim = Simulation(catalog=cat, outcome=lambda w: not (w.task_id == "c" and w.try_number == 1))
    sim.run(trigger())
    run = sim.state.runs["r1"]
    assert run.state == "success"
    assert {k: ti.try_number for k, ti in run.tasks.items()} == {
        ("a", -1): 1,
        ("b", -1): 1,
        ("c", -1): 2,
        ("d", -1): 1,
    }
    assert sim.log[-1].data.type == "DagRunSucceeded"


def test_settled_state_decides_nothing_more():
    cat = catalog_with(DIAMOND)
    sim = Simulation(catalog=cat, outcome=lambda w: True)
    sim.run(trigger())
    again = decide(sim.state, Tick("d"), now=sim.now + timedelta(days=1), catalog=cat)
    assert again.events == () and again.work == ()


# --------------------------------------------------------------------------- properties
@st.composite
def scenarios(draw):
    n = draw(st.integers(min_value=1, max_value=7))
    names = [f"t{i}" for i in range(n)]
    edges = {names[i]: [names[j] for j in range(i) if draw(st.booleans())] for i in range(n)}
    retries = draw(st.integers(min_value=0, max_value=2))
    fail_plan = draw(st.lists(st.booleans(), min_size=30, max_size=30))
    return edges, retries, fail_plan


def simulate(edges, retries, fail_plan) -> Simulation:
    cat = catalog_with(edges, retries=retries, retry_delay=5)
    plan = iter(fail_plan * 10)

    def outcome(_: RunTaskAttempt) -> bool:
        return not next(plan, False)

    sim = Simulation(catalog=cat, outcome=outcome)
    sim.run(trigger())
    return sim


PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@hgiven(scenarios())
def test_replaying_the_log_gives_the_same_state(scenario):
    sim = simulate(*scenario)
    assert given(*sim.log) == sim.state


@PROPS
@hgiven(scenarios(), st.data())
def test_a_redelivered_event_changes_nothing(scenario, data):
    sim = simulate(*scenario)
    k = data.draw(st.integers(min_value=1, max_value=len(sim.log)))
    state_k = given(*sim.log[:k])
    j = data.draw(st.integers(min_value=0, max_value=k - 1))
    assert evolve(state_k, sim.log[j]) == state_k


@PROPS
@hgiven(scenarios())
def test_attempts_never_exceed_retries_plus_one_and_each_runs_once(scenario):
    edges, retries, _ = scenario
    sim = simulate(*scenario)
    run = sim.state.runs["r1"]
    assert run.finished
    for ti in run.tasks.values():
        assert ti.try_number <= retries + 1
        assert sim.runs_of.get((ti.task_id, ti.map_index), 0) == ti.try_number
    # A run succeeds exactly when every task did.
    assert (run.state == "success") == all(t.state == "success" for t in run.tasks.values())


@PROPS
@hgiven(scenarios(), st.data())
def test_deciding_again_after_any_prefix_repeats_the_same_ids(scenario, data):
    """Recovery = replay a prefix of the log, then decide: what comes out has the ids of
    what the crashed scheduler had decided (so readers drop the repeats)."""
    sim = simulate(*scenario)
    k = data.draw(st.integers(min_value=1, max_value=len(sim.log)))
    state_k = given(*sim.log[:k])
    catalog = catalog_with(scenario[0], retries=scenario[1], retry_delay=5)
    redecided = decide(state_k, Tick("d"), now=sim.log[k - 1].time, catalog=catalog)
    later_ids = {e.id for e in sim.log[k:]}
    for e in redecided.events:
        assert e.id in later_ids


# --------------------------------------------------------------------------- richer properties
RULE_CHOICES = ("all_success", "all_done", "one_success", "none_failed", "all_failed", "always")


@st.composite
def rich_scenarios(draw):
    """Random DAGs with trigger rules, mapped tasks (over literals and upstream XComs),
    reschedule-mode sensors, branches, retries; and random attempt outcomes."""
    n = draw(st.integers(min_value=1, max_value=6))
    names = [f"t{i}" for i in range(n)]
    tasks = []
    for i, name in enumerate(names):
        ups = [names[j] for j in range(i) if draw(st.booleans())]
        kw: dict = {
            "retries": draw(st.integers(min_value=0, max_value=2)),
            "retry_delay_seconds": draw(st.sampled_from([0, 5])),
            "trigger_rule": draw(st.sampled_from(RULE_CHOICES)) if ups else "all_success",
        }
        kind = draw(st.sampled_from(["plain", "plain", "literal", "xcom", "sensor", "branch"]))
        if kind == "literal":
            kw["mapped"] = MapSpec(
                sources=(MapSource(arg="x", literal_length=draw(st.integers(0, 3))),)
            )
        elif kind == "xcom" and ups:
            kw["mapped"] = MapSpec(sources=(MapSource(arg="x", task_id=ups[0]),))
        elif kind == "sensor":
            kw["sensor"] = SensorSpec(
                mode="reschedule",
                timeout_seconds=draw(st.sampled_from([20, 1000])),
                soft_fail=draw(st.booleans()),
            )
        elif kind == "branch":
            kw["is_branch"] = True
        tasks.append(task(name, *ups, **kw))
    dag = dag_of(*tasks)
    plan = draw(
        st.lists(
            st.sampled_from(["success", "success", "failed", "skipped", "rescheduled"]),
            min_size=40,
            max_size=40,
        )
    )
    lengths = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    follow = draw(st.lists(st.booleans(), min_size=n * n, max_size=n * n))
    return dag, plan, lengths, follow


def simulate_rich(dag, plan, lengths, follow) -> Simulation:
    steps = iter(plan)
    downstream = {t.task_id: dag_downstream(dag, t.task_id) for t in dag.tasks}
    by_id = {t.task_id: t for t in dag.tasks}

    def outcome(w: RunTaskAttempt) -> Report:
        t = by_id[w.task_id]
        status = next(steps, "success")
        if status == "rescheduled" and t.sensor is None:
            status = "success"
        i = int(w.task_id[1:])
        if status != "success":
            return Report(status=status, reschedule_after=timedelta(seconds=15))
        follows = None
        if t.is_branch:
            downs = downstream[w.task_id]
            follows = tuple(d for k, d in enumerate(downs) if follow[i * len(dag.tasks) + k])
        return Report(value=list(range(lengths[i])), follow=follows)

    sim = Simulation(catalog=catalog_of(dag), outcome=outcome)
    sim.run(trigger())
    return sim


def dag_downstream(dag, task_id):
    return [t.task_id for t in dag.tasks if task_id in t.upstream_task_ids]


RICH = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@RICH
@hgiven(rich_scenarios())
def test_rich_runs_finish_and_replaying_the_log_gives_the_same_state(scenario):
    sim = simulate_rich(*scenario)
    assert sim.state.runs["r1"].finished
    assert given(*sim.log) == sim.state


@RICH
@hgiven(rich_scenarios(), st.data())
def test_rich_redelivered_events_change_nothing(scenario, data):
    sim = simulate_rich(*scenario)
    k = data.draw(st.integers(min_value=1, max_value=len(sim.log)))
    state_k = given(*sim.log[:k])
    j = data.draw(st.integers(min_value=0, max_value=k - 1))
    assert evolve(state_k, sim.log[j]) == state_k


@RICH
@hgiven(rich_scenarios())
def test_rich_attempts_never_exceed_retries_plus_one(scenario):
    dag = scenario[0]
    sim = simulate_rich(*scenario)
    retries = {t.task_id: t.retries for t in dag.tasks}
    for ti in sim.state.runs["r1"].tasks.values():
        assert ti.try_number - ti.reschedules <= retries[ti.task_id] + 1
        assert sim.runs_of.get((ti.task_id, ti.map_index), 0) == ti.try_number


@RICH
@hgiven(rich_scenarios(), st.data())
def test_rich_deciding_again_after_any_prefix_repeats_the_same_ids(scenario, data):
    sim = simulate_rich(*scenario)
    k = data.draw(st.integers(min_value=1, max_value=len(sim.log)))
    state_k = given(*sim.log[:k])
    redecided = decide(state_k, Tick("d"), now=sim.log[k - 1].time, catalog=sim.catalog)
    later_ids = {e.id for e in sim.log[k:]}
    for e in redecided.events:
        assert e.id in later_ids, e.data
    # ... and deciding once more on the result emits nothing.
    again = decide(redecided.state, Tick("d"), now=sim.log[k - 1].time, catalog=sim.catalog)
    assert again.events == ()
