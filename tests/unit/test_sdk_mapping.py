"""Dynamic task mapping: what ``partial().expand()`` serializes, and what ``unmap`` builds
for one map index."""

from __future__ import annotations

from typing import Any

import pytest
from ledgerflow.common.dagmodel import MapSource, MapSpec
from ledgerflow.sdk import DAG, BashOperator, PythonOperator, TaskGroup, XComArg, task
from ledgerflow.sdk.mapping import MappedOperator, ResolvedValue, unmap


def no_xcoms(task_id: str, key: str) -> Any:
    raise AssertionError(f"unexpected XCom lookup {task_id}/{key}")


def xcoms(values: dict[str, Any]) -> Any:
    def resolve(task_id: str, key: str) -> Any:
        assert key == "return_value"
        return values[task_id]

    return resolve


def test_classic_operator_partial_expand_over_a_literal() -> None:
    with DAG("classic", default_args={"retries": 2, "cwd": "/tmp"}) as d:
        mapped = BashOperator.partial(task_id="echo", env={"A": "1"}, queue="q").expand(
            bash_command=["echo 1", "echo 2", "echo 3"]
        )
    assert isinstance(mapped, MappedOperator) and mapped.is_mapped
    t = d.serialize().task("echo")
    assert t.mapped == MapSpec(
        kind="expand", sources=(MapSource(arg="bash_command", literal_length=3),)
    )
    assert (t.operator, t.retries, t.queue) == ("BashOperator", 2, "q")
    op = unmap(mapped, 2, no_xcoms)
    assert isinstance(op, BashOperator) and not getattr(op, "is_mapped", False)
    assert (op.task_id, op.bash_command, op.env, op.cwd, op.retries, op.queue) == (
        "echo",
        "echo 3",
        {"A": "1"},
        "/tmp",
        2,
        "q",
    )
    assert op.dag is d and d.get_task("echo") is mapped  # not added to the DAG
    with pytest.raises(IndexError):
        unmap(mapped, 3, no_xcoms)


def test_cross_product_order_is_airflows_last_argument_fastest() -> None:
    with DAG("cross"):

        @task
        def add(x: int, y: int) -> int:
            return x + y

        out = add.expand(x=[1, 2], y=[10, 20, 30])
    got = [unmap(out.operator, i, no_xcoms).op_kwargs for i in range(6)]
    assert got == [
        {"x": 1, "y": 10},
        {"x": 1, "y": 20},
        {"x": 1, "y": 30},
        {"x": 2, "y": 10},
        {"x": 2, "y": 20},
        {"x": 2, "y": 30},
    ]
    spec = out.operator.serialize().mapped
    assert spec is not None and [s.literal_length for s in spec.sources] == [2, 3]


def test_taskflow_expand_over_an_upstream_output_with_partial() -> None:
    with DAG("tf") as d:

        @task
        def numbers() -> list[int]:
            return [1, 2, 3]

        @task
        def add(x: int, y: int) -> int:
            return x + y

        @task
        def total(values: list[int]) -> int:
            return sum(values)

        added = add.partial(y=10).expand(x=numbers())
        total(added)
    assert isinstance(added, XComArg) and isinstance(added.operator, MappedOperator)
    assert {t.task_id: t.upstream_task_ids for t in d.tasks} == {
        "numbers": set(),
        "add": {"numbers"},
        "total": {"add"},
    }
    s = d.serialize()
    assert s.task("add").mapped == MapSpec(
        sources=(MapSource(arg="x", task_id="numbers", key="return_value"),)
    )
    assert s.task("add").operator == "@task"
    assert s.task("total").mapped is None
    op = unmap(added.operator, 1, xcoms({"numbers": [5, 6, 7]}))
    assert op.op_kwargs["y"] == 10
    # A value that came from an XCom is handed over as is, never rendered as a template.
    assert isinstance(op.op_kwargs["x"], ResolvedValue) and op.op_kwargs["x"].value == 6
    assert op.python_callable.__name__ == "add"


def test_mapping_over_a_mapped_tasks_output_and_dicts() -> None:
    with DAG("chain") as d:

        @task
        def double(x: int) -> int:
            return 2 * x

        @task
        def show(pair: Any) -> None:
            print(pair)

        doubled = double.expand(x=[1, 2])
        again = double.expand(x=doubled)
        shown = show.expand(pair={"a": 1, "b": 2})
    assert d.serialize().task("double__1").mapped == MapSpec(
        sources=(MapSource(arg="x", task_id="double"),)
    )
    # The lookup of a mapped upstream gives all its indexes' values.
    op = unmap(again.operator, 1, xcoms({"double": [2, 4]}))
    assert op.op_kwargs["x"].value == 4
    assert unmap(shown.operator, 1, no_xcoms).op_kwargs == {"pair": ("b", 2)}


def test_xcomarg_map_transforms_each_element() -> None:
    with DAG("map") as d:

        @task
        def names() -> list[str]:
            return ["a", "b"]

        @task
        def greet(text: str) -> str:
            return text

        greeted = greet.expand(text=names().map(lambda n: f"hello {n}"))
    assert d.serialize().task("greet").mapped == MapSpec(
        sources=(MapSource(arg="text", task_id="names"),)
    )
    assert unmap(greeted.operator, 1, xcoms({"names": ["x", "y"]})).op_kwargs["text"].value == (
        "hello y"
    )


def test_expand_kwargs_literal_and_from_xcom() -> None:
    with DAG("kw") as d:
        literal = BashOperator.partial(task_id="lit").expand_kwargs(
            [{"bash_command": "echo a"}, {"bash_command": "echo b", "env": {"X": "1"}}]
        )

        @task
        def configs() -> list[dict[str, Any]]:
            return []

        from_xcom = BashOperator.partial(task_id="dyn").expand_kwargs(configs())
    s = d.serialize()
    assert s.task("lit").mapped == MapSpec(
        kind="expand_kwargs", sources=(MapSource(arg="", literal_length=2),)
    )
    assert s.task("dyn").mapped == MapSpec(
        kind="expand_kwargs", sources=(MapSource(arg="", task_id="configs"),)
    )
    op = unmap(literal, 1, no_xcoms)
    assert (op.bash_command, op.env) == ("echo b", {"X": "1"})
    op = unmap(from_xcom, 0, xcoms({"configs": [{"bash_command": "echo {{ ds }}"}]}))
    assert op.bash_command == "echo {{ ds }}"  # expand_kwargs values are rendered (Airflow)
    with pytest.raises(ValueError, match="expects a list"):
        unmap(from_xcom, 0, xcoms({"configs": {"not": "a list"}}))


def test_classic_expand_over_xcom_and_output_of_mapped_task() -> None:
    with DAG("classic_xcom") as d:
        source = PythonOperator(task_id="source", python_callable=lambda: ["echo 1"])
        mapped = BashOperator.partial(task_id="run").expand(bash_command=source.output)
        after = PythonOperator(task_id="after", python_callable=print, op_args=[mapped.output])
    assert after.upstream_task_ids == {"run"} and mapped.upstream_task_ids == {"source"}
    op = unmap(mapped, 0, xcoms({"source": ["echo {{ not rendered }}"]}))
    assert isinstance(op.bash_command, ResolvedValue)
    assert op.bash_command.value == "echo {{ not rendered }}"
    assert d.serialize().task("run").mapped is not None


def test_mapped_task_in_a_group_gets_the_prefix_and_group() -> None:
    with DAG("grp") as d:
        with TaskGroup("g"):

            @task
            def one(x: int) -> int:
                return x

            out = one.expand(x=[1])
    assert out.operator.task_id == "g.one"
    assert d.serialize().task("g.one").task_group_id == "g"
    op = unmap(out.operator, 0, no_xcoms)
    assert op.task_id == "g.one" and op.task_group is out.operator.task_group


def test_mapping_argument_errors_are_airflows() -> None:
    with DAG("errors"):
        with pytest.raises(TypeError, match="unexpected keyword argument 'nope'"):
            BashOperator.partial(task_id="a", nope=1)
        with pytest.raises(ValueError, match="unexpected type 'int' for keyword argument"):
            BashOperator.partial(task_id="b").expand(bash_command=5)
        with pytest.raises(TypeError, match="no arguments to expand against"):
            BashOperator.partial(task_id="c").expand()

        @task(multiple_outputs=True)
        def pair():
            return {"a": [1]}

        @task
        def use(x: Any, ds: Any = None) -> Any:
            return x

        with pytest.raises(ValueError, match="cannot map over XCom with custom key 'a'"):
            use.expand(x=pair()["a"])
        with pytest.raises(ValueError, match="task context variable 'ds'"):
            use.expand(ds=["x"])
        with pytest.raises(TypeError, match="mapping already partial argument: x"):
            use.partial(x=1).expand(x=[1])
        with pytest.raises(TypeError, match="unexpected keyword argument 'zz'"):
            use.expand(zz=[1])


def test_mapped_sensor_serializes_its_sensor_settings() -> None:
    from ledgerflow.sdk import PythonSensor

    with DAG("sensors") as d:
        PythonSensor.partial(task_id="wait", poke_interval=3, mode="reschedule").expand(
            op_args=[[1], [2]]
        )
    sensor = d.serialize().task("wait").sensor
    assert sensor is not None and (sensor.mode, sensor.poke_interval_seconds) == ("reschedule", 3.0)


def test_unmap_of_an_unmapped_task_is_the_task() -> None:
    with DAG("plain"):
        op = BashOperator(task_id="x", bash_command="true")
    assert unmap(op, 0, no_xcoms) is op
