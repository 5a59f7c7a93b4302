"""TaskFlow (``@task`` and its variants, ``@setup``/``@teardown``) and BaseOperator's
Airflow arguments: how they build and serialize DAGs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from ledgerflow.common.dagmodel import SerializedDag
from ledgerflow.sdk import (
    DAG,
    BaseOperator,
    BashOperator,
    EmptyOperator,
    PythonOperator,
    TriggerRule,
    XComArg,
    setup,
    task,
    teardown,
)


def upstreams(d: DAG) -> dict[str, set[str]]:
    return {t.task_id: t.upstream_task_ids for t in d.tasks}


def test_repeated_calls_get_airflow_suffixes_and_override_sets_the_id() -> None:
    with DAG("ids") as d:

        @task
        def step() -> int:
            return 1

        step()
        step()
        step.override(task_id="step__7")()
        step()  # one more than the largest suffix in use, as in Airflow
        step.override(task_id="named")()
    assert d.task_ids == ["step", "step__1", "step__7", "step__8", "named"]


def test_multiple_outputs_is_inferred_from_a_dict_annotation_or_given() -> None:
    with DAG("mo") as d:

        @task
        def as_dict() -> dict[str, int]:
            return {"a": 1}

        @task
        def as_list() -> list[int]:
            return [1]

        @task(multiple_outputs=True)
        def explicit():
            return {"a": 1}

        @task(multiple_outputs=False)
        def off() -> dict[str, int]:
            return {}

        out = as_dict()
        as_list()
        explicit()
        off()
    assert [d.get_task(t).multiple_outputs for t in ("as_dict", "as_list", "explicit", "off")] == [
        True,
        False,
        True,
        False,
    ]
    key = out["a"]
    assert isinstance(key, XComArg) and (key.operator.task_id, key.key) == ("as_dict", "a")
    assert str(key) == ("{{ task_instance.xcom_pull(task_ids='as_dict', dag_id='mo', key='a') }}")


def test_xcomarg_with_a_key_makes_a_dependency() -> None:
    with DAG("keys") as d:

        @task(multiple_outputs=True)
        def pair():
            return {"left": 1, "right": 2}

        @task
        def use(x):
            return x

        use(pair()["left"])
    assert upstreams(d)["use"] == {"pair"}


def test_call_is_checked_against_the_signature_but_context_keys_may_be_left_out() -> None:
    with DAG("sig"):

        @task
        def needs(x, ti=None, params=None):
            return x

        needs(1)
        with pytest.raises(TypeError, match="missing a required argument: 'x'"):
            needs()
        with pytest.raises(TypeError, match="unexpected keyword argument 'y'"):
            needs(1, y=2)

        with pytest.raises(ValueError, match="Context key parameter ds"):

            @task
            def bad(ds="today"):
                return ds

            bad()


def test_task_variants_have_their_operator_names_and_flags() -> None:
    with DAG("variants") as d:

        @task.python
        def py():
            return 1

        @task.bash(env={"A": "1"})
        def sh(n: int) -> str:
            return f"echo {n}"

        @task.branch
        def choose():
            return "py"

        @task.short_circuit(ignore_downstream_trigger_rules=False)
        def gate():
            return True

        @task.sensor(poke_interval=5, timeout=60, mode="reschedule", soft_fail=True)
        def ready():
            return True

        choose() >> py()
        sh(1)
        gate()
        ready()
    s = d.serialize()
    assert {t.task_id: t.operator for t in s.tasks} == {
        "choose": "@task.branch",
        "py": "@task",
        "sh": "@task.bash",
        "gate": "@task.short_circuit",
        "ready": "@task.sensor",
    }
    assert s.task("choose").is_branch and s.task("gate").is_branch
    assert not s.task("py").is_branch
    sensor = s.task("ready").sensor
    assert sensor is not None
    assert (
        sensor.mode,
        sensor.poke_interval_seconds,
        sensor.timeout_seconds,
        sensor.soft_fail,
    ) == (
        "reschedule",
        5.0,
        60.0,
        True,
    )
    assert s.task("py").sensor is None
    assert d.get_task("sh").env == {"A": "1"}
    assert d.get_task("gate").ignore_downstream_trigger_rules is False
    assert s.task("sh").template_fields["python_callable"].endswith("<locals>.sh")


def test_unsupported_task_variant_says_so() -> None:
    with pytest.raises(AttributeError, match=r"@task.virtualenv is not supported"):
        task.virtualenv  # noqa: B018


def test_docstring_becomes_doc_md() -> None:
    with DAG("doc") as d:

        @task
        def documented():
            """Does a thing."""

        documented()
    assert d.serialize().task("documented").doc == "Does a thing."


def test_default_args_fill_taskflow_function_arguments() -> None:
    with DAG("defaults", default_args={"retries": 2, "limit": 7}) as d:

        @task
        def uses(limit):
            return limit

        uses()
    op = d.get_task("uses")
    assert op.op_kwargs == {"limit": 7}
    assert op.retries == 2


def test_setup_and_teardown_decorators() -> None:
    with DAG("st") as d:

        @setup
        def create():
            return "cluster"

        @teardown(on_failure_fail_dagrun=True)
        def delete(name):
            return None

        @setup
        @task(retries=3)
        def also_setup():
            return 1

        @task
        def work(name):
            return name

        cluster = create()
        work(cluster) >> delete(cluster)
        also_setup()
    s = d.serialize()
    assert (s.task("create").is_setup, s.task("create").is_teardown) == (True, False)
    assert s.task("delete").is_teardown and s.task("delete").on_failure_fail_dagrun
    assert s.task("delete").trigger_rule == "all_done_setup_success"
    assert s.task("also_setup").is_setup and s.task("also_setup").retries == 3
    assert set(s.task("delete").upstream_task_ids) == {"create", "work"}
    with DAG("st2"), pytest.raises(ValueError, match="Trigger rule not configurable"):
        teardown(task(trigger_rule="all_done")(lambda: None))()


def test_as_setup_and_as_teardown_on_operators_and_outputs() -> None:
    with DAG("as") as d:
        create = BashOperator(task_id="create", bash_command="true")
        work = EmptyOperator(task_id="work")
        delete = BashOperator(task_id="delete", bash_command="true")
        create >> work >> delete.as_teardown(setups=create, on_failure_fail_dagrun=True)

        @task
        def make():
            return 1

        @task
        def drop():
            return 2

        made = make().as_setup()
        dropped = drop().as_teardown(setups=made)
    assert create.is_setup and delete.is_teardown and delete.on_failure_fail_dagrun
    assert delete.trigger_rule == TriggerRule.ALL_DONE_SETUP_SUCCESS == "all_done_setup_success"
    assert dropped.operator.upstream_task_ids == {"make"}
    assert made.operator.is_setup
    with pytest.raises(ValueError, match="already a setup"):
        create.as_teardown()
    assert upstreams(d)["delete"] == {"create", "work"}


def test_setup_needs_all_success_downstreams() -> None:
    with DAG("st_rules") as d:
        s = EmptyOperator(task_id="s").as_setup()
        s >> EmptyOperator(task_id="w", trigger_rule="all_done")
    with pytest.raises(Exception, match="Setup tasks must be followed with trigger rule"):
        d.validate()


def on_fail(context: Any) -> None:
    pass


def on_ok(context: Any) -> None:
    pass


def test_every_base_operator_argument_is_stored_and_serialized() -> None:
    with DAG("args") as d:
        op = PythonOperator(
            task_id="op",
            python_callable=on_ok,
            retries=3,
            retry_delay=timedelta(seconds=10),
            retry_exponential_backoff=True,
            max_retry_delay=timedelta(minutes=5),
            execution_timeout=timedelta(seconds=30),
            on_success_callback=on_ok,
            on_failure_callback=[on_fail, on_ok],
            on_retry_callback=on_fail,
            on_execute_callback=[on_ok],
            priority_weight=7,
            weight_rule="absolute",
            pool="small",
            pool_slots=2,
            queue="q",
            depends_on_past=True,
            ignore_first_depends_on_past=False,
            wait_for_downstream=True,
            max_active_tis_per_dag=4,
            do_xcom_push=False,
            multiple_outputs=True,
            inlets=["in"],
            outlets="out",
            sla=timedelta(hours=1),
            email=["a@example.com"],
            email_on_failure=False,
            doc_md="**doc**",
            trigger_rule=TriggerRule.ONE_FAILED,
        )
    assert op.on_failure_callback == [on_fail, on_ok] and op.on_success_callback == [on_ok]
    assert (op.pool_slots, op.inlets, op.outlets, op.email) == (
        2,
        ["in"],
        ["out"],
        ["a@example.com"],
    )
    assert op.do_xcom_push is False and op.multiple_outputs is True
    t = d.serialize().task("op")
    assert (t.retries, t.retry_delay_seconds, t.retry_exponential_backoff) == (3, 10.0, 2.0)
    assert (t.max_retry_delay_seconds, t.execution_timeout_seconds) == (300.0, 30.0)
    assert (t.priority_weight, t.weight_rule, t.pool, t.queue) == (7, "absolute", "small", "q")
    assert (t.depends_on_past, t.ignore_first_depends_on_past, t.wait_for_downstream) == (
        True,
        False,
        True,
    )
    assert t.max_active_tis_per_dag == 4
    assert t.callbacks == (
        "on_execute_callback",
        "on_failure_callback",
        "on_success_callback",
        "on_retry_callback",
    )
    assert (t.trigger_rule, t.doc) == ("one_failed", "**doc**")
    assert SerializedDag.model_validate_json(d.serialize().model_dump_json()) == d.serialize()


@pytest.mark.parametrize("rule", sorted(TriggerRule.all_triggers()))
def test_every_trigger_rule_serializes(rule: str) -> None:
    with DAG("rules") as d:
        EmptyOperator(task_id="t", trigger_rule=rule)
    assert d.serialize().task("t").trigger_rule == rule


def test_unknown_arguments_are_refused_as_in_airflow() -> None:
    with (
        DAG("unknown"),
        pytest.raises(TypeError, match="Invalid arguments were passed to EmptyOperator"),
    ):
        EmptyOperator(task_id="t", not_an_argument=1)


class Templated(BaseOperator):
    """A custom operator with template fields of its own."""

    template_fields = ("sql", "target")
    template_ext = (".sql",)
    template_fields_renderers = {"sql": "sql"}
    ui_color = "#123456"

    def __init__(self, *, sql: str, target: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sql = sql
        self.target = target

    def execute(self, context: dict[str, Any]) -> None:
        return None


def test_custom_operator_template_fields_make_dependencies_and_display() -> None:
    with DAG("custom") as d:
        src = EmptyOperator(task_id="src")
        op = Templated(task_id="op", sql="select {{ ds }}", target=src.output)
        late = Templated(task_id="late", sql="x")
        late.target = op.output  # assigned after creation: still a dependency
    assert upstreams(d) == {"src": set(), "op": {"src"}, "late": {"op"}}
    shown = d.serialize().task("op").template_fields
    assert shown["sql"] == "select {{ ds }}"
    assert shown["target"].startswith("{{ task_instance.xcom_pull(task_ids='src'")
    assert d.serialize().task("op").operator == "Templated"


def test_partial_on_a_task_instance_is_an_error() -> None:
    with DAG("p"):
        op = EmptyOperator(task_id="e")
        with pytest.raises(TypeError, match="partial can only be called on Operator classes"):
            op.partial(task_id="x")
