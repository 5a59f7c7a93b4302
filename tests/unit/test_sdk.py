"""Building DAGs with the SDK and serializing them (pure, in-process)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

import pytest
from ledgerflow.common.dagmodel import SerializedDag
from ledgerflow.sdk import DAG, BaseOperator, BashOperator, PythonOperator, chain, dag, task
from ledgerflow.sdk.exceptions import DagCycleError, DuplicateTaskIdFound


def noop() -> None:
    return None


def upstreams(d: DAG) -> dict[str, set[str]]:
    return {t.task_id: t.upstream_task_ids for t in d.tasks}


class Echo(BaseOperator):
    """A custom operator with an argument of its own."""

    def __init__(self, *, message: str = "hi", **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.message = message

    def execute(self, context: dict[str, object]) -> str:
        return self.message


def test_context_manager_collects_tasks_and_rshift_with_lists() -> None:
    with DAG("diamond") as d:
        a = PythonOperator(task_id="a", python_callable=noop)
        b = BashOperator(task_id="b", bash_command="echo b")
        c = PythonOperator(task_id="c", python_callable=noop)
        e = PythonOperator(task_id="d", python_callable=noop)
        result = a >> [b, c] >> e
    assert result is e
    assert d.task_ids == ["a", "b", "c", "d"]
    assert upstreams(d) == {"a": set(), "b": {"a"}, "c": {"a"}, "d": {"b", "c"}}
    assert a.downstream_task_ids == {"b", "c"}
    assert [t.task_id for t in d.roots] == ["a"] and [t.task_id for t in d.leaves] == ["d"]


def test_lshift_and_set_upstream() -> None:
    with DAG("l") as d:
        a = Echo(task_id="a")
        b = Echo(task_id="b")
        c = Echo(task_id="c")
        c << b << a
        [a, b] << Echo(task_id="z")
    assert upstreams(d) == {"a": {"z"}, "b": {"a", "z"}, "c": {"b"}, "z": set()}


def test_chain_with_lists_pairs_equal_length_lists() -> None:
    with DAG("ch") as d:
        a, b, c, e, f, g = (Echo(task_id=x) for x in "abcefg")
        chain(a, [b, c], [e, f], g)
    assert upstreams(d) == {
        "a": set(),
        "b": {"a"},
        "c": {"a"},
        "e": {"b"},
        "f": {"c"},
        "g": {"e", "f"},
    }
    with DAG("ch2"), pytest.raises(ValueError, match="equal length"):
        chain([Echo(task_id="x")], [Echo(task_id="y"), Echo(task_id="z")])


def test_dependency_to_something_else_is_a_type_error() -> None:
    with DAG("t"):
        a = Echo(task_id="a")
        with pytest.raises(TypeError, match="cannot set a dependency"):
            a >> "b"  # type: ignore[operator]


def test_default_args_fill_unpassed_arguments_of_any_operator() -> None:
    defaults = {
        "retries": 3,
        "retry_delay": timedelta(seconds=7),
        "queue": "heavy",
        "owner": "data",
        "message": "from defaults",  # an argument of the custom operator
        "email_on_failure": True,  # unknown to every operator: ignored, as in Airflow
    }
    with DAG("defaults", default_args=defaults) as d:
        a = Echo(task_id="a")
        b = Echo(task_id="b", retries=0, message="explicit")
        c = BashOperator(task_id="c", bash_command="true", retry_delay=2.5)
    assert (a.retries, a.retry_delay_seconds, a.queue, a.owner, a.message) == (
        3,
        7.0,
        "heavy",
        "data",
        "from defaults",
    )
    assert (b.retries, b.message) == (0, "explicit")
    assert (c.retries, c.retry_delay_seconds) == (3, 2.5)
    assert d.owner == "data"


def test_taskflow_passes_xcomargs_and_makes_dependencies() -> None:
    with DAG("tf") as d:

        @task
        def extract() -> dict[str, int]:
            return {"n": 1}

        @task(retries=2)
        def combine(x: dict[str, int], y: int, *, z: list[object]) -> int:
            return 0

        first = extract()
        second = extract()  # same function twice: unique ids as in Airflow
        combine(first, 3, z=[second])
    assert d.task_ids == ["extract", "extract__1", "combine"]
    assert upstreams(d)["combine"] == {"extract", "extract__1"}
    assert d.get_task("combine").retries == 2
    assert d.get_task("combine").serialize().operator == "@task"


def test_taskflow_override_and_output_of_classic_operator() -> None:
    with DAG("tf2") as d:

        @task
        def show(value: str) -> None:
            print(value)

        bash = BashOperator(task_id="say", bash_command="echo hi")
        show.override(task_id="show_it", queue="q2")(bash.output)
    assert upstreams(d)["show_it"] == {"say"}
    assert d.get_task("show_it").queue == "q2"


def test_dag_decorator_builds_a_dag_with_params_from_defaults() -> None:
    @dag(schedule="@daily", tags=["x"])
    def my_pipeline(limit: int = 5) -> None:
        """Pipeline description."""

        @task
        def one() -> int:
            return 1

        one() >> BashOperator(task_id="two", bash_command="echo 2")

    d = my_pipeline()
    assert isinstance(d, DAG)
    assert d.dag_id == "my_pipeline"
    assert d.params == {"limit": 5}
    assert d.description == "Pipeline description."
    assert upstreams(d) == {"one": set(), "two": {"one"}}


def test_lines_of_tasks_and_edges_are_recorded() -> None:
    here = sys._getframe().f_lineno
    with DAG("lines") as d:
        a = Echo(task_id="a")  # here + 2
        b = Echo(  # here + 3
            task_id="b",
        )
        a >> b  # here + 6
    assert d.get_task("a").lineno == here + 2
    assert d.get_task("b").lineno == here + 3
    assert d.get_task("b").upstream_edges["a"].lineno == here + 6
    assert d.lineno == here + 1
    assert d.fileloc == __file__


def test_duplicate_task_id_points_at_the_second_definition() -> None:
    with DAG("dup"):
        Echo(task_id="x")
        line = sys._getframe().f_lineno + 2
        with pytest.raises(DuplicateTaskIdFound) as info:
            Echo(task_id="x")
    assert info.value.lineno == line
    assert info.value.kind == "duplicate_task_id"


def test_cycle_names_the_tasks_and_the_closing_edge() -> None:
    with DAG("cyc") as d:
        a, b, c = Echo(task_id="a"), Echo(task_id="b"), Echo(task_id="c")
        a >> b >> c
        line = sys._getframe().f_lineno + 1
        c >> a
    with pytest.raises(DagCycleError) as info:
        d.validate()
    assert info.value.message == "cycle in DAG 'cyc': a -> b -> c -> a"
    assert info.value.lineno == line


def test_self_loop_is_a_cycle() -> None:
    with DAG("self") as d:
        a = Echo(task_id="a")
        a >> a
    with pytest.raises(DagCycleError, match="a -> a"):
        d.validate()


def test_invalid_arguments_are_refused_at_creation() -> None:
    with DAG("bad"):
        with pytest.raises(ValueError, match="task_id"):
            Echo(task_id="has space")
        with pytest.raises(ValueError, match="retries"):
            Echo(task_id="r", retries=-1)
        with pytest.raises(ValueError, match="trigger_rule"):
            Echo(task_id="t", trigger_rule="sometimes")
    with pytest.raises(ValueError, match="dag_id"):
        DAG("no/slash")


def test_serialize_produces_the_data_only_model() -> None:
    with DAG(
        "ser",
        description="desc",
        schedule="@hourly",
        start_date=datetime(2024, 1, 1),
        tags=["a", "b"],
        params={"x": 1},
        max_active_runs=2,
        max_active_tasks=3,
        is_paused_upon_creation=True,
    ) as d:
        p = PythonOperator(
            task_id="p",
            python_callable=noop,
            execution_timeout=timedelta(minutes=1),
            priority_weight=5,
            pool="p1",
            doc="does nothing",
        )
        b = BashOperator(task_id="b", bash_command="echo $X", env={"X": "1"})
        p >> b
    s = d.serialize(fileloc="dags/ser.py")
    assert isinstance(s, SerializedDag)
    assert s.fileloc == "dags/ser.py"
    assert (s.schedule, s.tags, s.params, s.max_active_runs, s.max_active_tasks) == (
        "@hourly",
        ("a", "b"),
        {"x": 1},
        2,
        3,
    )
    assert s.start_date == datetime(2024, 1, 1, tzinfo=UTC)
    assert s.is_paused_upon_creation is True
    assert s.task_ids == ("p", "b")
    sp, sb = s.task("p"), s.task("b")
    assert sp.operator == "PythonOperator"
    assert sp.template_fields == {"python_callable": f"{__name__}.noop"}
    assert (sp.execution_timeout_seconds, sp.priority_weight, sp.pool, sp.doc) == (
        60.0,
        5,
        "p1",
        "does nothing",
    )
    assert (sp.retries, sp.retry_delay_seconds) == (0, 300.0)
    assert sb.template_fields == {"bash_command": "echo $X"}
    assert sb.upstream_task_ids == ("p",)
    assert s.downstream_task_ids("p") == ("b",)
    # JSON round trip: the form that travels in events.
    assert SerializedDag.model_validate_json(s.model_dump_json()) == s


def test_timedelta_schedule_serializes_as_iso_duration() -> None:
    with DAG("td", schedule=timedelta(hours=1)) as d:
        Echo(task_id="a")
    assert d.serialize().schedule == "PT3600S"


def test_tasks_of_different_dags_cannot_be_linked() -> None:
    with DAG("one"):
        a = Echo(task_id="a")
    with DAG("two"):
        b = Echo(task_id="b")
    with pytest.raises(ValueError, match="different DAGs"):
        a >> b


def test_dagless_task_joins_the_dag_of_its_relative() -> None:
    loose = Echo(task_id="loose")
    with DAG("join") as d:
        a = Echo(task_id="a")
    a >> loose
    assert d.task_ids == ["a", "loose"] and loose.dag is d


def test_xcomargs_take_part_in_shift_operators() -> None:
    with DAG("xs") as d:

        @task
        def one() -> int:
            return 1

        first, second, third = one(), one(), one()
        first >> second
        [first, second] >> third
        last = Echo(task_id="last")
        third >> last
    assert upstreams(d) == {
        "one": set(),
        "one__1": {"one"},
        "one__2": {"one", "one__1"},
        "last": {"one__2"},
    }
