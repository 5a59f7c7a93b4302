"""Every outcome of an attempt, callbacks and the XCom limits (in-process)."""

from __future__ import annotations

from typing import Any

import pytest

from .test_runtime_harness import run

HEADER = """
from datetime import datetime, timedelta, timezone
from ledgerflow.sdk import DAG, BaseOperator, BashOperator, PythonOperator
from ledgerflow.sdk.exceptions import (
    AirflowException, AirflowFailException, AirflowRescheduleException,
    AirflowSensorTimeout, AirflowSkipException,
)
"""


def task(body: str, **operator_args: Any) -> str:
    """A DAG ``t`` with one PythonOperator ``x`` whose callable is ``body``."""
    args = "".join(f", {k}={v}" for k, v in operator_args.items())
    return HEADER + (
        "def f(**context):\n"
        + "".join(f"    {line}\n" for line in body.splitlines())
        + "with DAG('t'):\n"
        + f"    PythonOperator(task_id='x', python_callable=f{args})\n"
    )


def test_success_carries_return_value_xcoms_and_branching() -> None:
    outcome = run(
        task(
            "ti = context['ti']\n"
            "ti.xcom_push('rows', [1, 2])\n"
            "ti.xcom_push('meta', {'ok': True})\n"
            "ti.follow_task_ids = ['b', 'c', 'b']\n"
            "ti.short_circuit = 'direct'\n"
            "return (1, 'two')"
        ),
        "x",
    )
    assert outcome.pop("rendered_fields")["op_args"] == []
    assert outcome == {
        "status": "success",
        "return_value": [1, "two"],
        "xcoms": {"rows": [1, 2], "meta": {"ok": True}},
        "follow_task_ids": ["b", "c"],
        "short_circuit": "direct",
    }


def test_pushing_return_value_sets_it_unless_execute_returns_one() -> None:
    pushed = run(task("context['ti'].xcom_push('return_value', 5)"), "x")
    assert (pushed["return_value"], pushed["xcoms"]) == (5, {})
    overridden = run(task("context['ti'].xcom_push('return_value', 5)\nreturn 6"), "x")
    assert overridden["return_value"] == 6
    not_pushed = run(task("context['ti'].xcom_push('k', 1)\nreturn 6", do_xcom_push=False), "x")
    assert (not_pushed["return_value"], not_pushed["xcoms"]) == (None, {"k": 1})


def test_multiple_outputs_pushes_each_key() -> None:
    source = HEADER + (
        "class Multi(BaseOperator):\n"
        "    def execute(self, context):\n"
        "        return {'a': 1, 'b': [2]}\n"
        "with DAG('t'):\n"
        "    Multi(task_id='x', multiple_outputs=True)\n"
    )
    outcome = run(source, "x")
    assert outcome["return_value"] == {"a": 1, "b": [2]}
    assert outcome["xcoms"] == {"a": 1, "b": [2]}


def test_skip_exception_skips() -> None:
    outcome = run(task("raise AirflowSkipException('nothing to do today')"), "x")
    assert outcome.pop("rendered_fields")["op_kwargs"] == {}
    assert outcome == {"status": "skipped", "reason": "nothing to do today"}


def test_bash_exit_99_skips() -> None:
    source = HEADER + (
        "with DAG('t'):\n    BashOperator(task_id='x', bash_command='echo skipping; exit 99')\n"
    )
    outcome = run(source, "x")
    assert outcome["status"] == "skipped", outcome
    assert outcome["rendered_fields"]["bash_command"] == "echo skipping; exit 99"


def test_reschedule_reports_an_aware_date() -> None:
    outcome = run(task("raise AirflowRescheduleException(datetime(2024, 5, 1, 13, 0))"), "x")
    assert outcome == {"status": "rescheduled", "reschedule_date": "2024-05-01T13:00:00+00:00"}
    aware = run(
        task(
            "raise AirflowRescheduleException("
            "datetime(2024, 5, 1, 13, 0, tzinfo=timezone(timedelta(hours=2))))"
        ),
        "x",
    )
    assert aware["reschedule_date"] == "2024-05-01T13:00:00+02:00"


@pytest.mark.parametrize(
    ("raise_", "error_type", "retryable"),
    [
        ("raise ValueError('bad input')", "ValueError", True),
        ("raise AirflowException('flaky service')", "AirflowException", True),
        ("raise AirflowFailException('no point')", "AirflowFailException", False),
        ("raise AirflowSensorTimeout('gave up')", "AirflowSensorTimeout", False),
        ("raise SystemExit(3)", "SystemExit", True),
    ],
)
def test_failures_say_whether_a_retry_can_help(
    raise_: str, error_type: str, retryable: bool, capfd: pytest.CaptureFixture[str]
) -> None:
    outcome = run(task(raise_), "x")
    assert outcome["status"] == "failed"
    assert (outcome["error_type"], outcome["retryable"]) == (error_type, retryable)
    assert outcome["error"].startswith(f"{error_type}: ")
    assert outcome["rendered_fields"]["op_args"] == []
    assert 'File "dags/t.py", line' in capfd.readouterr().err


def test_tracebacks_and_errors_show_the_dag_files_name_not_the_private_folder(
    capfd: pytest.CaptureFixture[str],
) -> None:
    outcome = run(task("raise RuntimeError(__file__)"), "x")
    assert outcome["error"] == "RuntimeError: dags/t.py"
    err = capfd.readouterr().err
    assert 'File "dags/t.py", line 9, in f' in err
    assert "ledgerflow-task-" not in err


# --------------------------------------------------------------------------- callbacks
CALLBACKS = (
    HEADER
    + """
import json, os
def record(kind):
    def callback(context):
        exc = context.get('exception')
        with open(os.environ['CALLBACK_LOG'], 'a') as f:
            f.write(json.dumps([kind, context['ti'].task_id, type(exc).__name__ if exc else None]) + '\\n')
    return callback
def broken(context):
    raise RuntimeError('callback bug')
def work(**context):
    record('execute')(context)
    mode = context['params']['mode']
    if mode == 'fail':
        raise ValueError('task failed')
    if mode == 'fatal':
        raise AirflowFailException('fatal')
    if mode == 'skip':
        raise AirflowSkipException('skip')
    return 'ok'
with DAG('t', params={'mode': 'ok'}):
    PythonOperator(
        task_id='x', python_callable=work, retries=1,
        on_execute_callback=record('on_execute'),
        on_success_callback=[broken, record('on_success')],
        on_failure_callback=record('on_failure'),
        on_retry_callback=record('on_retry'),
        on_skipped_callback=record('on_skipped'),
    )
"""
)


def callbacks_run(tmp_path: Any, monkeypatch: pytest.MonkeyPatch, **fields: Any) -> list[list]:
    import json

    log = tmp_path / "callbacks.jsonl"
    monkeypatch.setenv("CALLBACK_LOG", str(log))
    run(CALLBACKS, "x", **fields)
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_callbacks_on_success_in_order_and_a_broken_one_is_not_fatal(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "callbacks.jsonl"
    monkeypatch.setenv("CALLBACK_LOG", str(log))
    outcome = run(CALLBACKS, "x", max_tries=2)
    assert outcome["status"] == "success"
    assert [line.split('"')[1] for line in log.read_text().splitlines()] == [
        "on_execute",
        "execute",
        "on_success",
    ]
    assert "on_success_callback #0 (broken) failed: RuntimeError('callback bug')" in (
        capfd.readouterr().err
    )


@pytest.mark.parametrize(
    ("mode", "try_number", "max_tries", "last"),
    [
        ("fail", 1, 2, ["on_retry", "x", "ValueError"]),
        ("fail", 2, 2, ["on_failure", "x", "ValueError"]),
        ("fatal", 1, 2, ["on_failure", "x", "AirflowFailException"]),
        ("skip", 1, 2, ["on_skipped", "x", "AirflowSkipException"]),
    ],
)
def test_failure_retry_and_skip_callbacks(
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    try_number: int,
    max_tries: int,
    last: list,
) -> None:
    calls = callbacks_run(
        tmp_path,
        monkeypatch,
        conf={"mode": mode},
        try_number=try_number,
        max_tries=max_tries,
    )
    assert calls[0][0] == "on_execute"
    assert calls[-1] == last
    assert len(calls) == 3


def test_without_max_tries_the_tasks_retries_decide(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    request: dict[str, Any] = {"conf": {"mode": "fail"}, "max_tries": None}
    assert callbacks_run(tmp_path, monkeypatch, **request)[-1][0] == "on_retry"
    (tmp_path / "callbacks.jsonl").unlink()
    request["try_number"] = 2
    assert callbacks_run(tmp_path, monkeypatch, **request)[-1][0] == "on_failure"


def test_a_template_error_runs_the_failure_callback(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = CALLBACKS.replace("retries=1,", "retries=0, op_kwargs={'x': '{{ nope }}'},")
    log = tmp_path / "callbacks.jsonl"
    monkeypatch.setenv("CALLBACK_LOG", str(log))
    outcome = run(source, "x")
    assert outcome["error_type"] == "UndefinedError"
    assert log.read_text().splitlines() == ['["on_failure", "x", "TemplateRenderError"]']


# --------------------------------------------------------------------------- XCom limits
def test_xcoms_over_the_limit_fail_without_retry() -> None:
    body = "context['ti'].xcom_push('extra', 'y' * 600)\nreturn 'x' * 600"
    outcome = run(task(body), "x", xcom_max_bytes=1024)
    assert outcome["status"] == "failed"
    assert outcome["error_type"] == "XComTooLarge"
    assert outcome["retryable"] is False
    assert outcome["error"] == (
        "XCom of task x is 1233 bytes, over the limit of 1024 bytes (LEDGERFLOW_XCOM_MAX_BYTES)"
    )
    assert run(task(body), "x", xcom_max_bytes=2048)["status"] == "success"


def test_xcom_limit_falls_back_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEDGERFLOW_XCOM_MAX_BYTES", "1000")
    outcome = run(task("return 'x' * 2000"), "x", xcom_max_bytes=None)
    assert outcome["error_type"] == "XComTooLarge"


@pytest.mark.parametrize(
    "body",
    [
        "context['ti'].xcom_push('k', object())",
        "context['ti'].xcom_push('k', float('inf'))",
        "return {1, 2}",
    ],
)
def test_values_that_are_not_json_fail_clearly(body: str) -> None:
    outcome = run(task(body), "x")
    assert outcome["status"] == "failed"
    assert outcome["retryable"] is False
    assert "not JSON-serializable" in outcome["error"]


def test_invalid_branch_report_fails() -> None:
    outcome = run(task("context['ti'].short_circuit = True"), "x")
    assert (outcome["error_type"], outcome["retryable"]) == ("InvalidShortCircuit", False)


# --------------------------------------------------------------------------- requests
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"source": None}, "source must be a string"),
        ({"map_index": "x"}, "map_index must be an integer"),
        ({"logical_date": "yesterday"}, "not an ISO-8601 date"),
        ({"xcoms": {"a": 1}}, "xcoms must be a list"),
        ({"extra_files": ["a.sql"]}, "extra_files must be"),
    ],
)
def test_bad_requests_fail_without_retry(fields: dict[str, Any], message: str) -> None:
    outcome = run(task("return 1"), "x", **fields)
    assert (outcome["status"], outcome["error_type"], outcome["retryable"]) == (
        "failed",
        "BadRequest",
        False,
    )
    assert message in outcome["error"]


def test_old_requests_with_upstream_xcoms_still_run() -> None:
    outcome = run(
        task("return context['ti'].xcom_pull(task_ids='up')"),
        "x",
        upstream_xcoms={"up": {"rows": 3}},
        xcoms=None,
        max_tries=None,
        extra_files=None,
        variables=None,
        connections=None,
    )
    assert outcome["return_value"] == {"rows": 3}


def test_attempt_state_is_undone_for_the_next_in_process_attempt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os
    import sys

    monkeypatch.delenv("AIRFLOW_CTX_DAG_ID", raising=False)
    before_path, before_modules = list(sys.path), set(sys.modules)
    body = (
        "import os\n"
        "from ledgerflow.sdk.models import Variable\n"
        "return [os.environ['AIRFLOW_CTX_DAG_ID'], Variable.get('v'), os.path.dirname(__file__)]"
    )
    outcome = run(task(body), "x", variables={"v": "1"})
    assert outcome["return_value"][:2] == ["t", "1"]
    folder = outcome["return_value"][2]
    assert os.path.basename(folder).startswith("ledgerflow-task-")
    assert not os.path.exists(folder)  # removed after the attempt
    assert "AIRFLOW_CTX_DAG_ID" not in os.environ
    assert sys.path == before_path
    assert not [m for m in set(sys.modules) - before_modules if m.startswith("unusual_prefix_")]
    from ledgerflow.sdk.models import Variable

    assert Variable.get("v", default_var="gone") == "gone"
