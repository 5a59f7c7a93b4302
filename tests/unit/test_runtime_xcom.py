"""``ti.xcom_pull`` / ``ti.xcom_push`` with keys and map indexes (Airflow 3's rules)."""

from __future__ import annotations

from typing import Any

import pytest
from ledgerflow.sdk.context import RuntimeTaskInstance, XComNotSerializable

from .test_runtime_harness import run, xcom

XCOMS = [
    xcom("plain", {"rows": 3}),
    xcom("plain", "side", key="other"),
    xcom("mapped", "m0", map_index=0),
    xcom("mapped", "m2", map_index=2),
    xcom("mapped", "m1", map_index=1),
    xcom("mapped", "k1", key="k", map_index=1),
    xcom("none", None),
]


class FakeDag:
    """Just enough of a DAG for ``_upstream_is_mapped``: which tasks are mapped."""

    dag_id = "t"

    def __init__(self, mapped: set[str]) -> None:
        self.task_dict = {name: type("T", (), {"is_mapped": True})() for name in mapped}


def ti(map_index: int = -1, mapped: set[str] | None = None) -> RuntimeTaskInstance:
    return RuntimeTaskInstance(
        dag_id="t",
        task_id="me",
        run_id="r1",
        try_number=1,
        map_index=map_index,
        task=None,
        xcoms=XCOMS,
        dag=FakeDag(mapped or {"mapped", "empty_mapped"}),  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"task_ids": "plain"}, {"rows": 3}),
        ({"task_ids": "plain", "key": "other"}, "side"),
        ({"task_ids": "plain", "key": "absent"}, None),
        ({"task_ids": "plain", "key": "absent", "default": 0}, 0),
        ({"task_ids": "absent", "default": "d"}, "d"),
        ({"task_ids": "none", "default": "d"}, None),
        # A mapped upstream without map_indexes: every index, in index order.
        ({"task_ids": "mapped"}, ["m0", "m1", "m2"]),
        ({"task_ids": "mapped", "key": "k"}, ["k1"]),
        # A list of task ids: one list, the mapped task's values spliced in.
        ({"task_ids": ["plain", "mapped", "absent"]}, [{"rows": 3}, "m0", "m1", "m2", None]),
        ({"task_ids": ["plain"]}, [{"rows": 3}]),
        # Explicit map indexes.
        ({"task_ids": "mapped", "map_indexes": 1}, "m1"),
        ({"task_ids": "mapped", "map_indexes": 7, "default": "d"}, "d"),
        ({"task_ids": "mapped", "map_indexes": [2, 0]}, ["m2", "m0"]),
        ({"task_ids": ["mapped", "plain"], "map_indexes": 0}, ["m0", None]),
        ({"task_ids": "plain", "map_indexes": None}, {"rows": 3}),
        ({"task_ids": "plain", "map_indexes": [-1]}, [{"rows": 3}]),
        # Other DAGs, other runs and earlier dates are not available to a task.
        ({"task_ids": "plain", "dag_id": "other", "default": "d"}, "d"),
        ({"task_ids": "plain", "dag_id": "t"}, {"rows": 3}),
        ({"task_ids": "plain", "run_id": "r0"}, None),
        ({"task_ids": ["plain", "mapped"], "dag_id": "other"}, [None, None]),
    ],
)
def test_xcom_pull(kwargs: dict[str, Any], expected: Any) -> None:
    assert ti().xcom_pull(**kwargs) == expected


def test_pull_positional_arguments_follow_airflow() -> None:
    assert ti().xcom_pull("plain", "t", "other") == "side"
    with pytest.raises(TypeError):
        ti().xcom_pull("plain", "t", "other", False, 0)  # map_indexes is keyword-only


def test_push_then_pull_own_value() -> None:
    instance = ti()
    assert instance.xcom_pull() is None
    data = {"a": [1, 2]}
    instance.xcom_push("k", data)
    data["a"].append(3)  # later changes are not seen: the value was copied
    assert instance.xcom_pull(key="k") == {"a": [1, 2]}
    assert instance.xcom_pull(task_ids="me", key="k") == {"a": [1, 2]}
    assert instance.pushed == {"k": {"a": [1, 2]}}


def test_mapped_instance_pulls_its_own_index() -> None:
    instance = ti(map_index=4, mapped={"me", "mapped"})
    instance.xcom_push("k", "mine")
    assert instance.xcom_pull(key="k") == "mine"
    assert instance.xcom_pull(task_ids="mapped") == ["m0", "m1", "m2"]


@pytest.mark.parametrize("value", [object(), float("nan"), {1: object()}])
def test_push_of_non_json_fails_at_the_push(value: Any) -> None:
    with pytest.raises(XComNotSerializable, match="XCom 'k' of task 'me' is not JSON"):
        ti().xcom_push("k", value)


def test_push_needs_a_string_key() -> None:
    with pytest.raises(ValueError, match="non-empty string"):
        ti().xcom_push("", 1)


def test_resolve_xcom_for_mapping() -> None:
    instance = ti()
    assert instance.resolve_xcom("mapped") == ["m0", "m1", "m2"]
    assert instance.resolve_xcom("plain") == {"rows": 3}
    assert instance.resolve_xcom("plain", "other") == "side"
    with pytest.raises(KeyError, match="needs XCom 'return_value' of task 'absent'"):
        instance.resolve_xcom("absent")


def test_mapped_upstream_is_known_from_the_dag_even_with_one_index() -> None:
    instance = RuntimeTaskInstance(
        dag_id="t",
        task_id="me",
        run_id="r1",
        try_number=1,
        map_index=-1,
        task=None,
        xcoms=[xcom("one", "only", map_index=0)],
        dag=FakeDag({"one"}),  # type: ignore[arg-type]
    )
    assert instance.xcom_pull(task_ids="one") == ["only"]


def test_pull_through_the_runner_and_in_templates() -> None:
    source = """
from ledgerflow.sdk import DAG, PythonOperator

def pull(ti, templated, **context):
    return {
        "plain": ti.xcom_pull(task_ids="plain"),
        "other": ti.xcom_pull(task_ids="plain", key="other"),
        "mapped": ti.xcom_pull(task_ids="mapped"),
        "templated": templated,
    }

with DAG("t"):
    PythonOperator(task_id="x", python_callable=pull, op_kwargs={
        "templated": "{{ ti.xcom_pull(task_ids='mapped', map_indexes=2) }}-"
                          "{{ task_instance.xcom_pull('plain', key='other') }}",
    })
"""
    outcome = run(source, "x", xcoms=XCOMS)
    assert outcome["status"] == "success", outcome
    assert outcome["return_value"] == {
        "plain": {"rows": 3},
        "other": "side",
        "mapped": ["m0", "m1", "m2"],
        "templated": "m2-side",
    }
