"""Trigger rules: each rule given/when/then through ``decide``, and properties against a
table-driven reference model written from Airflow's documentation."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import given as hgiven
from hypothesis import strategies as st
from ledgerflow.common.core.trigger_rules import UpstreamCounts, evaluate
from ledgerflow.common.dagmodel import MapSource, MapSpec, TriggerRule
from ledgerflow.common.events import TaskInstanceQueued, TaskInstanceSkipped

from .core_harness import Driver, Report, Simulation, catalog_of, dag_of, given, task, trigger

RULES: tuple[TriggerRule, ...] = (
    "all_success",
    "all_failed",
    "all_done",
    "all_done_min_one_success",
    "all_done_setup_success",
    "all_skipped",
    "one_success",
    "one_failed",
    "one_done",
    "none_failed",
    "none_failed_min_one_success",
    "none_skipped",
    "always",
)
FINISHED = ("success", "failed", "skipped", "upstream_failed")


# --------------------------------------------------------------------------- reference model
class View:
    """The upstream states as Airflow's docs talk about them."""

    def __init__(self, states: list[str | None], setups: list[bool]) -> None:
        self.n = Counter(states)
        self.size = len(states)
        self.setup_states = [s for s, is_setup in zip(states, setups, strict=True) if is_setup]

    def count(self, *states: str) -> int:
        return sum(self.n[s] for s in states)

    @property
    def all_done(self) -> bool:
        return self.count(*FINISHED) == self.size

    def all_in(self, *states: str) -> bool:
        return self.count(*states) == self.size

    def any_of(self, *states: str) -> bool:
        return self.count(*states) > 0


Row = tuple[Callable[[View], bool], str]

# First matching row wins; no match: the task waits. From the docs' table
# ("Trigger Rules", Airflow 3) and the skip/upstream_failed notes of each rule.
REFERENCE: dict[str, list[Row]] = {
    "all_success": [
        (lambda v: v.any_of("failed", "upstream_failed"), "upstream_failed"),
        (lambda v: v.any_of("skipped"), "skipped"),
        (lambda v: v.all_in("success"), "run"),
    ],
    "all_failed": [
        (lambda v: v.any_of("success", "skipped"), "skipped"),
        (lambda v: v.all_in("failed", "upstream_failed"), "run"),
    ],
    "all_done": [(lambda v: v.all_done, "run")],
    "all_done_min_one_success": [
        (lambda v: v.any_of("skipped"), "skipped"),
        (lambda v: v.all_done and not v.any_of("success"), "upstream_failed"),
        (lambda v: v.all_done, "run"),
    ],
    "all_done_setup_success": [
        (
            lambda v: v.all_done and v.setup_states and all(s == "skipped" for s in v.setup_states),
            "skipped",
        ),
        (
            lambda v: v.all_done and v.setup_states and "success" not in v.setup_states,
            "upstream_failed",
        ),
        (lambda v: v.all_done, "run"),
    ],
    "all_skipped": [
        (lambda v: v.any_of("success", "failed", "upstream_failed"), "skipped"),
        (lambda v: v.all_in("skipped"), "run"),
    ],
    "one_success": [
        (lambda v: v.any_of("success"), "run"),
        (lambda v: v.all_in("skipped"), "skipped"),
        (lambda v: v.all_done, "upstream_failed"),
    ],
    "one_failed": [
        (lambda v: v.any_of("failed", "upstream_failed"), "run"),
        (lambda v: v.all_done, "skipped"),
    ],
    "one_done": [
        (lambda v: v.any_of("success", "failed"), "run"),
        (lambda v: v.all_done, "skipped"),
    ],
    "none_failed": [
        (lambda v: v.any_of("failed", "upstream_failed"), "upstream_failed"),
        (lambda v: v.all_in("success", "skipped"), "run"),
    ],
    "none_failed_min_one_success": [
        (lambda v: v.any_of("failed", "upstream_failed"), "upstream_failed"),
        (lambda v: v.all_in("skipped"), "skipped"),
        (lambda v: v.all_in("success", "skipped"), "run"),
    ],
    "none_skipped": [
        (lambda v: v.any_of("skipped"), "skipped"),
        (lambda v: v.all_done, "run"),
    ],
    "always": [(lambda v: True, "run")],
}


def reference(rule: str, states: list[str | None], setups: list[bool] | None = None) -> str:
    view = View(states, setups or [False] * len(states))
    if not states:
        return "run"
    for condition, verdict in REFERENCE[rule]:
        if condition(view):
            return verdict
    return "wait"


def counts_of(states: list[str | None], setups: list[bool]) -> UpstreamCounts:
    n = Counter(states)
    s = Counter(st for st, is_setup in zip(states, setups, strict=True) if is_setup)
    return UpstreamCounts(
        upstream=len(states),
        success=n["success"],
        skipped=n["skipped"],
        failed=n["failed"],
        upstream_failed=n["upstream_failed"],
        upstream_setup=sum(setups),
        success_setup=s["success"],
        skipped_setup=s["skipped"],
    )


# --------------------------------------------------------------------------- properties
upstream_state = st.sampled_from([None, "running", *FINISHED])


@settings(max_examples=2000, deadline=None)
@hgiven(
    st.sampled_from(RULES),
    st.lists(st.tuples(upstream_state, st.booleans()), min_size=1, max_size=8),
)
def test_trigger_rules_agree_with_the_reference_model(rule, upstreams):
    states = [s for s, _ in upstreams]
    setups = [b for _, b in upstreams]
    got = evaluate(rule, counts_of(states, setups)).verdict
    assert got == reference(rule, states, setups), (rule, upstreams)


@st.composite
def rule_dags(draw):
    """A random DAG with random trigger rules (some tasks mapped over a literal, so
    upstreams count per map index) and a plan of how each task ends."""
    n = draw(st.integers(min_value=2, max_value=7))
    names = [f"t{i}" for i in range(n)]
    tasks = []
    for i, name in enumerate(names):
        ups = [names[j] for j in range(i) if draw(st.booleans())]
        rule = draw(st.sampled_from(RULES)) if ups else "all_success"
        kw = {}
        if draw(st.integers(0, 3)) == 0:
            length = draw(st.integers(0, 3))
            kw["mapped"] = MapSpec(sources=(MapSource(arg="x", literal_length=length),))
        tasks.append(task(name, *ups, trigger_rule=rule, **kw))
    plan = draw(
        st.lists(st.sampled_from(["success", "failed", "skipped"]), min_size=30, max_size=30)
    )
    return dag_of(*tasks), plan


def simulate(dag, plan) -> Simulation:
    steps = iter(plan)
    sim = Simulation(
        catalog=catalog_of(dag), outcome=lambda w: Report(status=next(steps, "success"))
    )
    sim.run(trigger())
    return sim


def upstream_states(run, ups) -> list:
    """Every upstream instance's state (a mapped upstream once per map index)."""
    return [run.ti(u, i).state for u in ups for i in run.map_indexes(u)]


TRIGGER_VERDICTS = {
    "TaskInstanceQueued": "run",
    "TaskInstanceMapExpanded": "run",
    "TaskInstanceSkipped": "skipped",
    "TaskInstanceUpstreamFailed": "upstream_failed",
}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@hgiven(rule_dags())
def test_every_trigger_decision_matches_the_reference_at_the_time(scenario):
    dag, plan = scenario
    sim = simulate(dag, plan)
    run = sim.state.runs["r1"]
    assert run.finished, "the run must end"
    ups = {t.task_id: t.upstream_task_ids for t in dag.tasks}
    rules = {t.task_id: t.trigger_rule for t in dag.tasks}
    for k, event in enumerate(sim.log):
        data = event.data
        verdict = TRIGGER_VERDICTS.get(data.type)
        if verdict is None or (isinstance(data, TaskInstanceQueued) and data.try_number > 1):
            continue
        if isinstance(data, TaskInstanceSkipped) and data.reason == "mapped over zero values":
            verdict = "run"  # the rule let it run; it had nothing to run
        before = given(*sim.log[:k]).runs["r1"]
        states = upstream_states(before, ups[data.task_id])
        assert reference(rules[data.task_id], states) == verdict, (data.task_id, states)
    assert all(ti.finished for ti in run.tasks.values())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@hgiven(rule_dags())
def test_nothing_decidable_is_left_waiting(scenario):
    """Before each executor report the core has settled: every instance in state None
    is one the reference model says must wait (decisions are made as early as Airflow
    makes them)."""
    dag, plan = scenario
    sim = simulate(dag, plan)
    for k, event in enumerate(sim.log):
        if event.source != "ledgerflow/executor":
            continue
        run = given(*sim.log[:k]).runs["r1"]
        for t in dag.tasks:
            for i in run.map_indexes(t.task_id):
                if run.ti(t.task_id, i).state is None:
                    states = upstream_states(run, t.upstream_task_ids)
                    assert reference(t.trigger_rule, states) == "wait", (t.task_id, i, states)


# --------------------------------------------------------------------------- given/when/then
def two_upstreams(rule: TriggerRule, *, setup: bool = False):
    """u1, u2 (roots; u2 a setup if asked) -> x(rule); p -> u3 for upstream_failed."""
    return dag_of(
        task("u1"),
        task("u2", is_setup=setup),
        task("x", "u1", "u2", trigger_rule=rule),
    )


def finish(d: Driver, task_id: str, how: str) -> None:
    {"success": d.succeed, "failed": d.fail, "skipped": d.skip}[how](task_id)


CASES = [
    # rule, u1, u2, x's state (None: still waiting), queued?
    ("all_success", "success", "success", "queued"),
    ("all_success", "success", "skipped", "skipped"),
    ("all_success", "skipped", "failed", "skipped"),  # decided at the first skip
    ("all_success", "failed", "skipped", "upstream_failed"),
    ("all_failed", "failed", "failed", "queued"),
    ("all_failed", "failed", "success", "skipped"),
    ("all_done", "failed", "skipped", "queued"),
    ("all_done_min_one_success", "success", "failed", "queued"),
    ("all_done_min_one_success", "failed", "failed", "upstream_failed"),
    ("all_done_min_one_success", "success", "skipped", "skipped"),
    ("all_skipped", "skipped", "skipped", "queued"),
    ("all_skipped", "skipped", "success", "skipped"),
    ("one_success", "failed", "success", "queued"),
    ("one_success", "failed", "failed", "upstream_failed"),
    ("one_success", "skipped", "skipped", "skipped"),
    ("one_failed", "success", "failed", "queued"),
    ("one_failed", "success", "skipped", "skipped"),
    ("one_done", "skipped", "failed", "queued"),
    ("one_done", "skipped", "skipped", "skipped"),
    ("none_failed", "success", "skipped", "queued"),
    ("none_failed", "skipped", "skipped", "queued"),  # all skipped: still runs
    ("none_failed", "success", "failed", "upstream_failed"),
    ("none_failed_min_one_success", "success", "skipped", "queued"),
    ("none_failed_min_one_success", "skipped", "skipped", "skipped"),
    ("none_failed_min_one_success", "failed", "success", "upstream_failed"),
    ("none_skipped", "success", "failed", "queued"),
    ("none_skipped", "success", "skipped", "skipped"),
    ("always", "failed", "skipped", "queued"),
    ("all_done_setup_success", "failed", "success", "queued"),
]


@pytest.mark.parametrize(("rule", "u1", "u2", "expected"), CASES)
def test_rule_outcome_once_upstreams_are_done(rule, u1, u2, expected):
    d = Driver.of(two_upstreams(rule))
    d.trigger()
    finish(d, "u1", u1)
    finish(d, "u2", u2)
    assert d.ti("x").state == expected


def test_every_rule_has_a_case():
    assert {c[0] for c in CASES} == set(RULES)


def test_always_runs_at_once_without_waiting_for_upstreams():
    d = Driver.of(two_upstreams("always"))
    d.trigger()
    assert sorted(d.queued()) == [("u1", -1), ("u2", -1), ("x", -1)]


def test_one_success_fires_as_soon_as_one_upstream_succeeded():
    d = Driver.of(two_upstreams("one_success"))
    d.trigger()
    d.succeed("u1")
    assert d.queued() == [("x", -1)] and d.ti("u2").state == "queued"


def test_one_failed_fires_as_soon_as_one_upstream_failed():
    d = Driver.of(two_upstreams("one_failed"))
    d.trigger()
    d.fail("u1")
    assert ("x", -1) in d.queued()


def test_all_success_upstream_failed_at_once_while_others_run():
    d = Driver.of(two_upstreams("all_success"))
    d.trigger()
    d.fail("u1")
    assert d.types() == ["TaskInstanceFailed", "TaskInstanceUpstreamFailed"]
    assert d.ti("u2").state == "queued"


def test_all_done_setup_success_skips_when_all_setups_skipped_and_fails_without_success():
    d = Driver.of(two_upstreams("all_done_setup_success", setup=True))
    d.trigger()
    d.succeed("u1")
    d.skip("u2")
    assert d.ti("x").state == "skipped"
    d = Driver.of(two_upstreams("all_done_setup_success", setup=True))
    d.trigger()
    d.succeed("u1")
    d.fail("u2")
    assert d.ti("x").state == "upstream_failed"


def test_skip_reason_names_the_rule_and_the_counts():
    d = Driver.of(two_upstreams("all_success"))
    d.trigger()
    d.skip("u1")
    skips = [e.data for e in d.last.events if isinstance(e.data, TaskInstanceSkipped)]
    assert [s.task_id for s in skips] == ["x"]
    assert "all_success" in skips[0].reason and "1 skipped" in skips[0].reason


def test_skips_and_upstream_failures_propagate_down_a_chain():
    dag = dag_of(task("a"), task("b", "a"), task("c", "b"), task("e", "c", trigger_rule="all_done"))
    d = Driver.of(dag)
    d.trigger()
    d.skip("a")
    assert d.states() == {"a": "skipped", "b": "skipped", "c": "skipped", "e": "queued"}
    d = Driver.of(dag)
    d.trigger()
    d.fail("a")
    assert d.states() == {
        "a": "failed",
        "b": "upstream_failed",
        "c": "upstream_failed",
        "e": "queued",
    }


# --------------------------------------------------------------------------- mapped upstreams
def mapped_upstream(rule: TriggerRule):
    return dag_of(
        task("src"),
        task("m", "src", mapped=MapSpec(sources=(MapSource(arg="x", task_id="src"),))),
        task("join", "m", trigger_rule=rule),
    )


def test_a_mapped_upstream_counts_each_map_index():
    d = Driver.of(mapped_upstream("all_success"))
    d.trigger()
    d.succeed("src", value=[1, 2, 3])
    d.succeed("m", 0)
    d.succeed("m", 1)
    assert d.ti("join").state is None  # index 2 still queued
    d.fail("m", 2)
    assert d.ti("join").state == "upstream_failed"


def test_one_success_over_a_mapped_upstream_fires_on_the_first_index():
    d = Driver.of(mapped_upstream("one_success"))
    d.trigger()
    d.succeed("src", value=[1, 2, 3])
    d.fail("m", 1)
    assert d.ti("join").state is None
    d.succeed("m", 2)
    assert d.queued() == [("join", -1)]


def test_all_failed_over_a_mapped_upstream_needs_every_index_failed():
    d = Driver.of(mapped_upstream("all_failed"))
    d.trigger()
    d.succeed("src", value=["a", "b"])
    d.fail("m", 0)
    assert d.ti("join").state is None
    d.fail("m", 1)
    assert d.queued() == [("join", -1)]
