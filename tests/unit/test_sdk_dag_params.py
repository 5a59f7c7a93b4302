"""DAG-level arguments, params (``Param``, ``ParamsDict``, ``DagParam``) and what they
serialize to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ledgerflow.common.dagmodel import SerializedDag
from ledgerflow.sdk import DAG, EmptyOperator, Param, ParamsDict, dag, task
from ledgerflow.sdk.exceptions import DagAuthoringError, ParamValidationError
from ledgerflow.sdk.params import DagParam, process_params


def on_done(context: Any) -> None:
    pass


def upper(value: str) -> str:
    return value.upper()


def test_dag_arguments_are_stored_and_serialized() -> None:
    with DAG(
        "full",
        description="d",
        schedule="@daily",
        start_date=datetime(2024, 1, 1),
        end_date=datetime(2024, 12, 31),
        template_searchpath="/opt/sql",
        user_defined_macros={"ten": 10},
        user_defined_filters={"upper": upper},
        render_template_as_native_obj=True,
        catchup=True,
        dagrun_timeout=timedelta(hours=2),
        doc_md="# Full",
        max_active_runs=3,
        max_active_tasks=5,
        is_paused_upon_creation=True,
        tags={"b", "a"},
        owner_links={"ops": "https://example.com"},
        on_success_callback=on_done,
        on_failure_callback=[on_done],
        default_args={"owner": "ops", "retries": 1},
    ) as d:
        EmptyOperator(task_id="t")
    assert d.user_defined_macros == {"ten": 10} and d.user_defined_filters == {"upper": upper}
    assert d.render_template_as_native_obj is True and d.template_searchpath == ["/opt/sql"]
    assert d.on_success_callback is on_done and d.on_failure_callback == [on_done]
    assert d.owner_links == {"ops": "https://example.com"}
    s = d.serialize(fileloc="dags/full.py")
    assert (s.schedule, s.catchup, s.dagrun_timeout_seconds, s.doc_md) == (
        "@daily",
        True,
        7200.0,
        "# Full",
    )
    assert s.start_date == datetime(2024, 1, 1, tzinfo=UTC)
    assert s.end_date == datetime(2024, 12, 31, tzinfo=UTC)
    assert (s.template_searchpath, s.tags, s.owner) == (("/opt/sql",), ("a", "b"), "ops")
    assert (s.max_active_runs, s.max_active_tasks, s.is_paused_upon_creation) == (3, 5, True)
    assert s.task("t").retries == 1
    assert SerializedDag.model_validate_json(s.model_dump_json()) == s


def test_params_serialize_defaults_and_json_schemas() -> None:
    with DAG(
        "params",
        params={
            "n": Param(5, type="integer", minimum=1, maximum=10, description="how many"),
            "mode": Param("fast", enum=["fast", "slow"], title="Mode"),
            "plain": [1, 2],
            "required": Param(type="string"),
            "nullable": Param(None, type=["null", "string"]),
        },
    ) as d:
        EmptyOperator(task_id="t")
    s = d.serialize()
    assert s.params == {"n": 5, "mode": "fast", "plain": [1, 2], "nullable": None}
    assert s.param_schemas == {
        "n": {"type": "integer", "minimum": 1, "maximum": 10, "description": "how many"},
        "mode": {"enum": ["fast", "slow"], "title": "Mode"},
        "plain": {},
        "required": {"type": "string"},
        "nullable": {"type": ["null", "string"]},
    }
    # A param without a default has a schema but no value: that is how "required" reads.
    assert "required" in s.param_schemas and "required" not in s.params


def test_params_dict_validates_reads_and_writes() -> None:
    params = ParamsDict({"n": Param(5, type="integer", minimum=1), "s": "x"})
    assert params["n"] == 5 and dict(params) == {"n": 5, "s": "x"}
    assert {**params} == {"n": 5, "s": "x"}
    assert isinstance(params.get_param("n"), Param)
    params["n"] = 7
    assert params["n"] == 7
    with pytest.raises(ParamValidationError, match="Invalid input for param n"):
        params["n"] = 0
    with pytest.raises(ParamValidationError, match="json-serializable"):
        Param(object())
    with pytest.raises(ParamValidationError, match="No value passed"):
        Param(type="string").resolve()
    assert params == {"n": 7, "s": "x"}


def test_process_params_merges_dag_task_and_conf() -> None:
    with DAG("pp", params={"a": Param(1, type="integer"), "b": "dag"}) as d:
        t = EmptyOperator(task_id="t", params={"b": "task", "c": 3})
    assert process_params(d, t, {"a": 2}) == {"a": 2, "b": "task", "c": 3}
    with pytest.raises(ParamValidationError, match="Invalid input for param a"):
        process_params(d, t, {"a": "not an int"})


def test_default_args_params_join_the_dag_params() -> None:
    with DAG("dap", default_args={"params": {"x": 1}, "retries": 2}, params={"y": 2}) as d:
        EmptyOperator(task_id="t")
    assert d.params == {"y": 2, "x": 1} and "params" not in d.default_args


def test_a_scheduled_dag_needs_valid_defaults_for_its_params() -> None:
    with DAG("sched", schedule="@daily", params={"x": Param(type="string")}) as d:
        EmptyOperator(task_id="t")
    with pytest.raises(DagAuthoringError, match="Invalid input for param x"):
        d.validate()
    with DAG("manual", schedule=None, params={"x": Param(type="string")}) as manual:
        EmptyOperator(task_id="t")
    manual.validate()  # the trigger's conf gives the value, checked then
    with DAG("bad", schedule="@hourly", params={"x": Param("abc", type="integer")}) as bad:
        EmptyOperator(task_id="t")
    with pytest.raises(DagAuthoringError, match="not allowed to define a schedule"):
        bad.validate()


def test_dag_decorator_params_are_dag_params_passed_as_references() -> None:
    seen: dict[str, Any] = {}

    @dag(schedule=None, params={"limit": Param(5, type="integer", minimum=1)})
    def pipeline(limit: int = 3, name: str = "x") -> None:
        seen.update(limit=limit, name=name)

        @task
        def use(n: int) -> int:
            return n

        use(limit)

    d = pipeline()
    assert isinstance(seen["limit"], DagParam)
    assert d.params == {"limit": 3, "name": "x"}  # the function's defaults win (Airflow)
    assert d.serialize().param_schemas["limit"] == {"type": "integer", "minimum": 1}
    assert d.get_task("use").op_args[0] is seen["limit"]
    assert pipeline(limit=9).params["limit"] == 9
    with pytest.raises(ParamValidationError):
        pipeline(limit=0)


def test_dag_param_resolves_from_conf_then_default_then_params() -> None:
    with DAG("dp", params={"p": "from params"}) as d:
        with_default = d.param("x", "default")
        from_params = d.param("p")

    class Run:
        def __init__(self, conf: dict[str, Any]) -> None:
            self.conf = conf

    assert with_default.resolve({"dag_run": Run({"x": "conf"}), "params": {}}) == "conf"
    assert with_default.resolve({"dag_run": Run({}), "params": {}}) == "default"
    assert from_params.resolve({"dag_run": Run({}), "params": {"p": "v"}}) == "v"
    assert d.params["x"] == "default"


def test_unknown_dag_argument_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        DAG("x", not_an_argument=1)  # type: ignore[call-arg]
