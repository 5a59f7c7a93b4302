"""What operators, branches and sensors do when executed, with a fake task instance in
the context (the runner provides the real one)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ledgerflow.sdk import (
    DAG,
    AirflowException,
    AirflowRescheduleException,
    AirflowSensorTimeout,
    AirflowSkipException,
    BaseOperator,
    BashOperator,
    BranchPythonOperator,
    DateTimeSensor,
    EmptyOperator,
    ExternalTaskSensor,
    PokeReturnValue,
    PythonOperator,
    PythonSensor,
    ShortCircuitOperator,
    TaskDeferred,
    TaskGroup,
    TimeDeltaSensor,
    task,
)
from ledgerflow.sdk.sensors import BaseSensorOperator


class FakeTI:
    """What operators use of ``context["ti"]``."""

    def __init__(self, states: dict[tuple[str, str | None], str] | None = None) -> None:
        self.follow_task_ids: list[str] | None = None
        self.short_circuit: str | None = None
        self.states = states or {}
        self.asked: list[tuple[str, str | None, datetime | None]] = []

    def xcom_pull(self, task_ids: Any = None, key: str = "return_value", **_: Any) -> Any:
        return None

    def external_task_state(self, dag_id: str, task_id: str | None, logical_date: Any) -> Any:
        self.asked.append((dag_id, task_id, logical_date))
        return self.states.get((dag_id, task_id))


LOGICAL = datetime(2024, 5, 1, tzinfo=UTC)


def context(ti: FakeTI | None = None, **extra: Any) -> dict[str, Any]:
    return {"ti": ti or FakeTI(), "logical_date": LOGICAL, "params": {}, **extra}


# ---------------------------------------------------------------------------- bash / python
def test_bash_last_line_is_the_value_and_exit_99_skips(capfd: pytest.CaptureFixture[str]) -> None:
    with DAG("bash"):
        ok = BashOperator(task_id="ok", bash_command="echo one; echo two")
        skip = BashOperator(task_id="skip", bash_command="exit 99")
        custom = BashOperator(task_id="custom", bash_command="exit 3", skip_on_exit_code=[3, 4])
        never = BashOperator(task_id="never", bash_command="exit 99", skip_on_exit_code=None)
        processed = BashOperator(
            task_id="processed", bash_command="echo 41", output_processor=lambda s: int(s) + 1
        )
    assert ok.execute(context()) == "two"
    with pytest.raises(AirflowSkipException, match="exit code 99. Skipping"):
        skip.execute(context())
    with pytest.raises(AirflowSkipException):
        custom.execute(context())
    with pytest.raises(AirflowException, match="non-zero exit code 99"):
        never.execute(context())
    assert processed.execute(context()) == 42
    assert "one\ntwo\n" in capfd.readouterr().out


def test_bash_env_append_env_and_cwd(tmp_path: Any) -> None:
    with DAG("env"):
        replaced = BashOperator(task_id="r", bash_command="echo ${A}-${HOME:-none}", env={"A": "1"})
        appended = BashOperator(
            task_id="a", bash_command="echo ${A}-${PATH:+path}", env={"A": "2"}, append_env=True
        )
        in_dir = BashOperator(task_id="c", bash_command="pwd", cwd=str(tmp_path))
        missing = BashOperator(task_id="m", bash_command="pwd", cwd=str(tmp_path / "nope"))
    assert replaced.execute(context()) == "1-none"
    assert appended.execute(context()) == "2-path"
    assert in_dir.execute(context()) == str(tmp_path)
    with pytest.raises(AirflowException, match="Can not find the cwd"):
        missing.execute(context())


def test_python_operator_op_args_kwargs_templates_dict_and_context() -> None:
    def f(a, b, templates_dict=None, ti=None, **kwargs):
        return [a, b, templates_dict, ti is not None, kwargs["logical_date"] == LOGICAL]

    with DAG("py"):
        op = PythonOperator(
            task_id="p",
            python_callable=f,
            op_args=[1],
            op_kwargs={"b": 2},
            templates_dict={"q": "x"},
            templates_exts=[".sql"],
        )
    assert op.execute(context()) == [1, 2, {"q": "x"}, True, True]
    assert op.template_ext == (".sql",)
    assert EmptyOperator(task_id="e").execute(context()) is None


def test_taskflow_bash_runs_the_returned_command() -> None:
    with DAG("tb") as d:

        @task.bash
        def cmd(word: str) -> str:
            return f"echo {word}; echo done-{word}"

        @task.bash
        def empty() -> str:
            return "  "

        cmd("hi")
        empty()
    assert d.get_task("cmd").execute(context()) == "done-hi"
    with pytest.raises(TypeError, match="non-empty string"):
        d.get_task("empty").execute(context())


# -------------------------------------------------------------------------------- branching
def test_branch_reports_follow_task_ids_and_expands_groups() -> None:
    with DAG("br") as d:
        branch = BranchPythonOperator(task_id="branch", python_callable=lambda: ["grp", "b"])
        with TaskGroup("grp") as grp:
            first = EmptyOperator(task_id="first")
            first >> EmptyOperator(task_id="second")
        b = EmptyOperator(task_id="b")
        c = EmptyOperator(task_id="c")
        branch >> [grp, b, c]
    ti = FakeTI()
    assert branch.execute(context(ti)) == ["grp", "b"]  # the XCom is the choice
    assert ti.follow_task_ids == ["grp.first", "b"]
    assert d.serialize().task("branch").is_branch


def test_branch_choices_must_be_direct_downstreams() -> None:
    with DAG("bad_branch") as d:
        far = EmptyOperator(task_id="far")
        choose = BranchPythonOperator(task_id="choose", python_callable=lambda: "far")
        near = EmptyOperator(task_id="near")
        choose >> near >> far
        ghost = BranchPythonOperator(task_id="ghost", python_callable=lambda: "nope")
        ghost >> EmptyOperator(task_id="x")
        none = BranchPythonOperator(task_id="none", python_callable=lambda: None)
        none >> EmptyOperator(task_id="y")
        wrong_type = BranchPythonOperator(task_id="wrong", python_callable=lambda: 3)
    with pytest.raises(AirflowException, match="'far', which is not directly downstream"):
        choose.execute(context())
    with pytest.raises(AirflowException, match="'nope', which is not a task"):
        ghost.execute(context())
    ti = FakeTI()
    none.execute(context(ti))
    assert ti.follow_task_ids == []
    with pytest.raises(AirflowException, match="must be either None, a task ID"):
        wrong_type.execute(context())
    assert d.get_task("far")


def test_taskflow_branch() -> None:
    with DAG("tfb") as d:

        @task.branch
        def pick(n: int) -> str:
            return "big" if n > 1 else "small"

        pick(5) >> [EmptyOperator(task_id="big"), EmptyOperator(task_id="small")]
    ti = FakeTI()
    assert d.get_task("pick").execute(context(ti)) == "big"
    assert ti.follow_task_ids == ["big"]


@pytest.mark.parametrize(("ignore", "mode"), [(True, "all"), (False, "direct")])
def test_short_circuit_reports_how_far_to_skip(ignore: bool, mode: str) -> None:
    with DAG("sc"):
        falsy = ShortCircuitOperator(
            task_id="falsy", python_callable=lambda: 0, ignore_downstream_trigger_rules=ignore
        )
        falsy >> EmptyOperator(task_id="after")
        truthy = ShortCircuitOperator(task_id="truthy", python_callable=lambda: "yes")
        truthy >> EmptyOperator(task_id="after2")
        leaf = ShortCircuitOperator(task_id="leaf", python_callable=lambda: False)
    ti = FakeTI()
    assert falsy.execute(context(ti)) == 0 and ti.short_circuit == mode
    ti = FakeTI()
    assert truthy.execute(context(ti)) == "yes" and ti.short_circuit is None
    ti = FakeTI()
    assert leaf.execute(context(ti)) is False and ti.short_circuit is None  # nothing to skip


def test_taskflow_short_circuit() -> None:
    with DAG("tfsc") as d:

        @task.short_circuit(ignore_downstream_trigger_rules=False)
        def check() -> bool:
            return False

        check() >> EmptyOperator(task_id="next")
    ti = FakeTI()
    d.get_task("check").execute(context(ti))
    assert ti.short_circuit == "direct"


# ---------------------------------------------------------------------------------- sensors
class CountingSensor(BaseSensorOperator):
    def __init__(self, *, done_after: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.done_after = done_after
        self.pokes = 0

    def poke(self, context: dict[str, Any]) -> bool | PokeReturnValue:
        self.pokes += 1
        return PokeReturnValue(self.pokes >= self.done_after, xcom_value=self.pokes)


def test_poke_mode_loops_until_done_and_returns_the_xcom_value() -> None:
    with DAG("poke"):
        sensor = CountingSensor(task_id="s", done_after=3, poke_interval=0.001)
    assert sensor.execute(context()) == 3 and sensor.pokes == 3


def test_poke_mode_timeout_fails_or_skips_with_soft_fail() -> None:
    with DAG("timeout"):
        hard = CountingSensor(task_id="hard", done_after=10**9, poke_interval=0.001, timeout=0.02)
        soft = CountingSensor(
            task_id="soft", done_after=10**9, poke_interval=0.001, timeout=0.02, soft_fail=True
        )
    with pytest.raises(AirflowSensorTimeout, match="Sensor has timed out"):
        hard.execute(context())
    with pytest.raises(AirflowSkipException, match="Sensor has timed out"):
        soft.execute(context())


def test_reschedule_mode_pokes_once_then_asks_to_be_rescheduled() -> None:
    with DAG("resched") as d:
        sensor = CountingSensor(task_id="r", done_after=2, poke_interval=30, mode="reschedule")
    before = datetime.now(UTC)
    with pytest.raises(AirflowRescheduleException) as info:
        sensor.execute(context())
    assert sensor.pokes == 1
    assert before + timedelta(seconds=29) < info.value.reschedule_date
    assert info.value.reschedule_date < datetime.now(UTC) + timedelta(seconds=31)
    assert sensor.execute(context()) == 2
    spec = d.serialize().task("r").sensor
    assert spec is not None and (spec.mode, spec.poke_interval_seconds) == ("reschedule", 30.0)


def test_exponential_backoff_is_capped_by_max_wait() -> None:
    with DAG("backoff"):
        sensor = CountingSensor(
            task_id="b", done_after=1, poke_interval=10, exponential_backoff=True, max_wait=25
        )
    intervals = [sensor.next_poke_interval(0, 0.0, n) for n in range(1, 6)]
    assert all(1 <= i <= 25 for i in intervals) and intervals[-1] == 25


def test_sensor_arguments_are_checked() -> None:
    with DAG("checks"):
        with pytest.raises(ValueError, match="The mode must be one of"):
            CountingSensor(task_id="m", done_after=1, mode="sometimes")
        with pytest.raises(ValueError, match="mutually exclusive"):
            CountingSensor(task_id="x", done_after=1, soft_fail=True, never_fail=True)


def test_python_sensor_and_taskflow_sensor() -> None:
    calls: list[int] = []

    def ready(n: int) -> bool:
        calls.append(n)
        return len(calls) >= 2

    with DAG("ps") as d:
        PythonSensor(task_id="py", python_callable=ready, op_args=[7], poke_interval=0.001)

        @task.sensor(poke_interval=0.001)
        def tf_ready() -> PokeReturnValue:
            return PokeReturnValue(True, xcom_value={"found": 1})

        tf_ready()
    assert d.get_task("py").execute(context()) is None and calls == [7, 7]
    assert d.get_task("tf_ready").execute(context()) == {"found": 1}


def test_time_sensors() -> None:
    with DAG("time"):
        past = DateTimeSensor(task_id="past", target_time=datetime(2000, 1, 1), poke_interval=0.001)
        future = DateTimeSensor(task_id="future", target_time="2999-01-01T00:00:00+00:00")
        delta = TimeDeltaSensor(task_id="delta", delta=timedelta(hours=1))
        with pytest.raises(TypeError, match="Expected str or datetime"):
            DateTimeSensor(task_id="bad", target_time=5)  # type: ignore[arg-type]
    assert past.target_time == "2000-01-01T00:00:00"
    assert past.poke(context()) is True and future.poke(context()) is False
    assert delta.poke(context(data_interval_end=datetime(2000, 1, 1, tzinfo=UTC))) is True
    assert delta.poke(context(data_interval_end=datetime.now(UTC))) is False


def test_external_task_sensor_asks_the_runtime() -> None:
    with DAG("ext"):
        one = ExternalTaskSensor(
            task_id="one",
            external_dag_id="other",
            external_task_id="t",
            execution_delta=timedelta(days=1),
        )
        many = ExternalTaskSensor(
            task_id="many",
            external_dag_id="other",
            external_task_ids=["t", "u"],
            failed_states=["failed"],
            skipped_states=["skipped"],
        )
        whole = ExternalTaskSensor(task_id="whole", external_dag_id="other")
        with pytest.raises(ValueError, match="Only one of `external_task_id`"):
            ExternalTaskSensor(
                task_id="bad", external_dag_id="o", external_task_id="a", external_task_ids=["b"]
            )
    ti = FakeTI({("other", "t"): "success"})
    assert one.poke(context(ti)) is True
    assert ti.asked == [("other", "t", LOGICAL - timedelta(days=1))]
    assert many.poke(context(FakeTI({("other", "t"): "success"}))) is False
    with pytest.raises(AirflowException, match="failed"):
        many.poke(context(FakeTI({("other", "t"): "success", ("other", "u"): "failed"})))
    with pytest.raises(AirflowSkipException):
        many.poke(context(FakeTI({("other", "u"): "skipped"})))
    assert whole.poke(context(FakeTI({("other", None): "success"}))) is True


def test_defer_is_refused_clearly() -> None:
    class Deferring(BaseOperator):
        def execute(self, context: dict[str, Any]) -> None:
            self.defer(trigger=object(), method_name="done")

    with DAG("defer"):
        op = Deferring(task_id="d")
    with pytest.raises(TaskDeferred, match="deferrable operators are not supported") as info:
        op.execute(context())
    assert info.value.retryable is False
