"""Mapped tasks at run time: the runner expands the request's map index before rendering."""

from __future__ import annotations

from .test_runtime_harness import run, xcom

MAPPED = """
from ledgerflow.sdk import DAG, BashOperator, task

with DAG("t"):
    @task
    def numbers():
        return [1, 2, 3]

    @task
    def double(x, **context):
        return {"x": x * 2, "map_index": context["ti"].map_index}

    @task
    def total(values):
        return sum(v["x"] for v in values)

    total(double.expand(x=numbers()))
    BashOperator.partial(task_id="echo").expand(
        bash_command=["echo {{ ti.map_index }}-{{ ds_nodash }}", "echo second"]
    )

    @task
    def commands():
        return ["echo {{ ds }}"]

    BashOperator.partial(task_id="from_xcom").expand(bash_command=commands())
"""


def test_a_mapped_task_runs_its_map_index() -> None:
    outcome = run(MAPPED, "double", map_index=1, xcoms=[xcom("numbers", [1, 2, 3])])
    assert outcome["status"] == "success", outcome
    assert outcome["return_value"] == {"x": 4, "map_index": 1}


def test_a_downstream_of_a_mapped_task_gets_every_index() -> None:
    xcoms = [xcom("double", {"x": 2 * i}, map_index=i - 1) for i in (3, 1, 2)]
    outcome = run(MAPPED, "total", xcoms=xcoms)
    assert outcome["return_value"] == 12, outcome


def test_literal_mapped_values_are_templates_xcom_values_are_data() -> None:
    echoed = run(MAPPED, "echo", map_index=0)
    assert echoed["return_value"] == "0-20240501", echoed
    assert echoed["rendered_fields"]["bash_command"] == "echo 0-20240501"
    assert run(MAPPED, "echo", map_index=1)["return_value"] == "second"
    from_xcom = run(MAPPED, "from_xcom", map_index=0, xcoms=[xcom("commands", ["echo {{ ds }}"])])
    assert from_xcom["return_value"] == "{{ ds }}", from_xcom


def test_a_mapped_task_without_its_upstream_xcom_fails_clearly() -> None:
    outcome = run(MAPPED, "double", map_index=0)
    assert outcome["status"] == "failed"
    assert "needs XCom 'return_value' of task 'numbers'" in outcome["error"]


def test_a_mapped_task_needs_a_map_index() -> None:
    outcome = run(MAPPED, "double", map_index=-1, xcoms=[xcom("numbers", [1])])
    assert (outcome["error_type"], outcome["retryable"]) == ("BadRequest", False)
