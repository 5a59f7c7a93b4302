"""Task groups, dependency helpers (``chain_linear``, ``cross_downstream``, labels) and the
setup/teardown context manager."""

from __future__ import annotations

import pytest
from ledgerflow.common.dagmodel import SerializedTaskGroup
from ledgerflow.sdk import (
    DAG,
    EmptyOperator,
    Label,
    TaskGroup,
    chain,
    chain_linear,
    cross_downstream,
    task,
    task_group,
)
from ledgerflow.sdk.exceptions import DuplicateTaskIdFound


def upstreams(d: DAG) -> dict[str, set[str]]:
    return {t.task_id: t.upstream_task_ids for t in d.tasks}


def E(task_id: str) -> EmptyOperator:  # noqa: N802 - short on purpose
    return EmptyOperator(task_id=task_id)


def test_group_ids_prefix_tasks_and_nested_groups() -> None:
    with DAG("g") as d:
        with TaskGroup("outer", tooltip="the outer one") as outer:
            E("a")
            with TaskGroup("inner"):
                E("b")
            with TaskGroup("flat", prefix_group_id=False):
                E("c")
        E("top")
    assert d.task_ids == ["outer.a", "outer.inner.b", "c", "top"]
    assert outer.group_id == "outer" and outer["a"].task_id == "outer.a"
    s = d.serialize()
    assert s.task_groups == (
        SerializedTaskGroup(group_id="outer", tooltip="the outer one"),
        SerializedTaskGroup(group_id="outer.inner", parent_group_id="outer"),
        SerializedTaskGroup(group_id="outer.flat", parent_group_id="outer", prefix_group_id=False),
    )
    assert {t.task_id: t.task_group_id for t in s.tasks} == {
        "outer.a": "outer",
        "outer.inner.b": "outer.inner",
        "c": "outer.flat",
        "top": None,
    }


def test_group_in_dependencies_stands_for_its_roots_and_leaves() -> None:
    with DAG("deps") as d:
        start = E("start")
        with TaskGroup("g") as g:
            a, b, c = E("a"), E("b"), E("c")
            a >> [b, c]
        with TaskGroup("h") as h:
            E("x")
        end = E("end")
        start >> g >> h >> end
    assert upstreams(d) == {
        "start": set(),
        "g.a": {"start"},
        "g.b": {"g.a"},
        "g.c": {"g.a"},
        "h.x": {"g.b", "g.c"},
        "end": {"h.x"},
    }


def test_group_default_args_override_the_dags() -> None:
    with DAG("defaults", default_args={"retries": 1, "queue": "q1"}) as d:
        with TaskGroup("g", default_args={"retries": 5}):
            E("in_group")
            with TaskGroup("nested", default_args={"queue": "q2"}):
                E("deeper")
        E("outside")
    got = {t.task_id: (t.retries, t.queue) for t in d.tasks}
    assert got == {"g.in_group": (5, "q1"), "g.nested.deeper": (5, "q2"), "outside": (1, "q1")}


def test_group_ids_collide_with_groups_and_tasks() -> None:
    with DAG("dup"):
        TaskGroup("g")
        with pytest.raises(DuplicateTaskIdFound, match="group_id 'g' has already been added"):
            TaskGroup("g")
        E("t")
        with pytest.raises(DuplicateTaskIdFound):
            TaskGroup("t")
        with pytest.raises(DuplicateTaskIdFound):
            E("g")
        assert TaskGroup("g", add_suffix_on_collision=True).group_id == "g__1"
    with pytest.raises(ValueError, match="invalid group_id"):
        with DAG("bad"):
            TaskGroup("has.dot")
    with pytest.raises(RuntimeError, match="inside a dag"):
        TaskGroup("nodag")


def test_task_group_decorator_suffixes_and_forwards_return_values() -> None:
    with DAG("tg") as d:

        @task
        def one(x: int) -> int:
            return x

        @task_group
        def section(n: int):
            """A tooltip."""
            return one(n)

        @task_group(group_id="custom")
        def no_return():
            one(0)

        first = section(1)
        second = section(2)
        group = no_return()
        first >> second >> group
    assert d.task_ids == ["section.one", "section__1.one", "custom.one"]
    assert isinstance(group, TaskGroup) and group.group_id == "custom"
    assert upstreams(d)["section__1.one"] == {"section.one"}
    assert upstreams(d)["custom.one"] == {"section__1.one"}
    assert d.serialize().task_groups[0].tooltip == "A tooltip."
    with pytest.raises(NotImplementedError, match="mapped task groups"):
        section.expand(n=[1, 2])


def test_repeated_task_in_a_group_gets_a_suffix_inside_the_group() -> None:
    with DAG("tgr") as d:

        @task
        def step():
            return 1

        with TaskGroup("g"):
            step()
            step()
        step()
    assert d.task_ids == ["g.step", "g.step__1", "step"]


def test_chain_with_groups_chain_linear_and_cross_downstream() -> None:
    with DAG("helpers") as d:
        a, b, c, x, y, z = (E(t) for t in "abcxyz")
        chain_linear(a, [b, c], [x, y])
        cross_downstream([x, y], [z])
    assert upstreams(d) == {
        "a": set(),
        "b": {"a"},
        "c": {"a"},
        "x": {"b", "c"},
        "y": {"b", "c"},
        "z": {"x", "y"},
    }
    with DAG("chain_groups") as d2:
        first = E("first")
        with TaskGroup("g") as g:
            E("in")
        last = E("last")
        chain(first, g, last)
    assert upstreams(d2) == {"first": set(), "g.in": {"first"}, "last": {"g.in"}}
    with pytest.raises(ValueError, match="No dependencies were set"):
        chain_linear([E("solo")])


def test_labels_pass_dependencies_through() -> None:
    with DAG("labels") as d:
        branch, yes, no, join = E("branch"), E("yes"), E("no"), E("join")
        branch >> Label("yes") >> yes >> join
        branch >> Label("no") >> no
        chain(no, Label("done"), join)
    assert upstreams(d) == {
        "branch": set(),
        "yes": {"branch"},
        "no": {"branch"},
        "join": {"yes", "no"},
    }


def test_setup_teardown_context_manager_wraps_the_work() -> None:
    with DAG("ctx") as d:
        create = E("create").as_setup()
        delete = E("delete").as_teardown(setups=create)
        with delete:
            w1, w2 = E("w1"), E("w2")
            w1 >> w2
            E("alone")
    assert upstreams(d) == {
        "create": set(),
        "delete": {"create", "w2", "alone"},
        "w1": {"create"},
        "w2": {"w1"},
        "alone": {"create"},
    }


def test_nested_setup_teardown_blocks_link_setups_and_teardowns() -> None:
    with DAG("nested") as d:

        @task
        def s1():
            return 1

        @task
        def t1():
            return 1

        @task
        def s2():
            return 1

        @task
        def t2():
            return 1

        outer_setup = s1().as_setup()
        with outer_setup >> t1().as_teardown(setups=outer_setup):
            inner_setup = s2().as_setup()
            with inner_setup >> t2().as_teardown(setups=inner_setup):
                E("work")
    ups = upstreams(d)
    assert ups["work"] == {"s2"}
    assert "s1" in ups["s2"] and "t2" in ups["t1"] and "work" in ups["t2"]
    with DAG("plain"), pytest.raises(RuntimeError, match="Only setup/teardown tasks"):
        with E("not_setup"):
            pass


def test_group_leaves_skip_teardowns() -> None:
    with DAG("leaves") as d:
        with TaskGroup("g") as g:
            s = E("s").as_setup()
            w = E("w")
            t = E("t").as_teardown(setups=s)
            s >> w >> t
        g >> E("after")
    assert upstreams(d)["after"] == {"g.w"}
