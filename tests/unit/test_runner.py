"""The task runner end to end: a subprocess reading a request, writing an outcome to fd 3.

The runtime semantics (context, templating, XComs, callbacks, ...) are covered in-process
by ``test_runtime_*.py``; these tests cover the process protocol around them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DIAMOND = (ROOT / "examples" / "diamond.py").read_text()
HELLO = (ROOT / "examples" / "hello.py").read_text()


@dataclass
class Result:
    outcome: dict[str, Any]
    stdout: str
    stderr: str
    returncode: int


def run_task(
    source: str,
    dag_id: str,
    task_id: str,
    *,
    try_number: int = 1,
    upstream_xcoms: dict[str, Any] | None = None,
    conf: dict[str, Any] | None = None,
    fd3: bool = False,
    **fields: Any,
) -> Result:
    """Run the runner as the executor does; ``fd3`` puts the outcome pipe at fd 3 itself,
    otherwise ``--outcome-fd`` names it."""
    request = {
        "source": source,
        "filename": f"dags/{dag_id}.py",
        "dag_id": dag_id,
        "task_id": task_id,
        "run_id": "manual__1",
        "map_index": -1,
        "try_number": try_number,
        "conf": conf or {},
        "logical_date": "2024-05-01T12:30:00+00:00",
        "upstream_xcoms": upstream_xcoms or {},
        **fields,
    }
    read_end, write_end = os.pipe()
    try:
        if fd3:
            args: list[str] = []
            kwargs: dict[str, Any] = {
                "pass_fds": (3,),
                "preexec_fn": lambda: os.dup2(write_end, 3),
            }
        else:
            args = ["--outcome-fd", str(write_end)]
            kwargs = {"pass_fds": (write_end,)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "ledgerflow.sdk.runner", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            **kwargs,
        )
        os.close(write_end)
        write_end = -1
        stdout, stderr = proc.communicate(json.dumps(request), timeout=60)
        with os.fdopen(read_end) as outcome_pipe:
            read_end = -1
            lines = outcome_pipe.read().splitlines()
    finally:
        for fd in (read_end, write_end):
            if fd >= 0:
                os.close(fd)
    assert len(lines) == 1, (lines, stderr)
    return Result(json.loads(lines[0]), stdout, stderr, proc.returncode)


def test_python_task_with_upstream_xcoms_on_fd3() -> None:
    result = run_task(
        DIAMOND,
        "diamond",
        "d",
        upstream_xcoms={"a": {"rows": 3}, "b": "bash done", "c": "recovered"},
        fd3=True,
    )
    assert result.outcome["rendered_fields"]["op_args"] == []
    del result.outcome["rendered_fields"]
    assert result.outcome == {
        "status": "success",
        "return_value": "3 rows",
        "xcoms": {},
        "follow_task_ids": None,
        "short_circuit": None,
    }
    assert "report: rows=3 bash=bash done flaky=recovered" in result.stdout
    assert result.returncode == 0


def test_bash_task_streams_output_and_returns_last_line() -> None:
    result = run_task(DIAMOND, "diamond", "b")
    assert result.outcome["return_value"] == "bash done"
    assert result.outcome["rendered_fields"]["bash_command"] == (
        'echo "hello from bash"; echo "bash done"'
    )
    assert result.stdout.splitlines() == ["hello from bash", "bash done"]


def test_failing_task_reports_the_exception_and_logs_the_traceback() -> None:
    result = run_task(DIAMOND, "diamond", "c", try_number=1)
    assert result.outcome.pop("rendered_fields")["op_kwargs"] == {}
    assert result.outcome == {
        "status": "failed",
        "error": "RuntimeError: failing on purpose on the first try",
        "error_type": "RuntimeError",
        "retryable": True,
    }
    assert "Traceback (most recent call last)" in result.stderr
    assert 'File "dags/diamond.py", line 21, in flaky' in result.stderr
    assert result.returncode == 1
    retried = run_task(DIAMOND, "diamond", "c", try_number=2)
    assert retried.outcome["status"] == "success"
    assert retried.outcome["return_value"] == "recovered"


def test_non_json_return_value_fails_without_retry() -> None:
    source = (
        "from ledgerflow.sdk import DAG, task\n"
        "with DAG('objs'):\n"
        "    @task\n"
        "    def make():\n"
        "        return object()\n"
        "    make()\n"
    )
    result = run_task(source, "objs", "make")
    assert result.outcome["status"] == "failed"
    assert result.outcome["error_type"] == "XComSerializationError"
    assert result.outcome["retryable"] is False
    assert "not JSON-serializable" in result.outcome["error"]


def test_nan_is_not_json() -> None:
    source = (
        "from ledgerflow.sdk import DAG, PythonOperator\n"
        "with DAG('nan'):\n"
        "    PythonOperator(task_id='n', python_callable=lambda: float('nan'))\n"
    )
    assert run_task(source, "nan", "n").outcome["error_type"] == "XComSerializationError"


def test_taskflow_arguments_params_and_context() -> None:
    result = run_task(HELLO, "hello", "greet", conf={"name": "ledgerflow"})
    assert result.outcome["return_value"] == "hello, ledgerflow"
    result = run_task(HELLO, "hello", "shout", upstream_xcoms={"greet": "hello, you"})
    assert result.outcome["return_value"] == "HELLO, YOU!"
    # The ADR 0006 form of the same XCom.
    new_form = run_task(
        HELLO,
        "hello",
        "shout",
        xcoms=[{"task_id": "greet", "map_index": -1, "key": "return_value", "value": "hi"}],
    )
    assert new_form.outcome["return_value"] == "HI!"
    assert "HELLO, YOU!" in result.stdout


def test_context_keys_logging_and_bash_environment() -> None:
    source = (
        "import logging\n"
        "from ledgerflow.sdk import DAG, BashOperator, PythonOperator, get_current_context\n"
        "def look(**context):\n"
        "    logging.getLogger('user').info('looking')\n"
        "    assert get_current_context()['ti'] is context['ti']\n"
        "    ti = context['ti']\n"
        "    return {k: str(context[k]) for k in ('ds', 'ts', 'run_id', 'try_number', 'map_index')}"
        " | {'pulled': ti.xcom_pull(task_ids=['up', 'absent']), 'dag_run': context['dag_run'].conf,"
        " 'task': context['task'].task_id, 'dag': context['dag'].dag_id}\n"
        "with DAG('ctx'):\n"
        "    PythonOperator(task_id='look', python_callable=look)\n"
        "    BashOperator(task_id='env', bash_command='echo $AIRFLOW_CTX_DAG_ID/$AIRFLOW_CTX_TASK_ID/$AIRFLOW_CTX_TRY_NUMBER')\n"
    )
    result = run_task(
        source, "ctx", "look", try_number=2, upstream_xcoms={"up": [1]}, conf={"k": 1}
    )
    assert result.outcome["status"] == "success", (result.outcome, result.stderr)
    assert result.outcome["return_value"] == {
        "ds": "2024-05-01",
        "ts": "2024-05-01T12:30:00+00:00",
        "run_id": "manual__1",
        "try_number": "2",
        "map_index": "-1",
        "pulled": [[1], None],
        "dag_run": {"k": 1},
        "task": "look",
        "dag": "ctx",
    }
    assert "INFO user - looking" in result.stderr
    env = run_task(source, "ctx", "env", try_number=3)
    assert env.outcome["return_value"] == "ctx/env/3"


def test_bash_non_zero_exit_fails() -> None:
    source = (
        "from ledgerflow.sdk import DAG, BashOperator\n"
        "with DAG('b'):\n"
        "    BashOperator(task_id='x', bash_command='echo before; exit 3')\n"
    )
    result = run_task(source, "b", "x")
    assert result.outcome["status"] == "failed"
    assert result.outcome["error_type"] == "AirflowException"
    assert "non-zero exit code 3" in result.outcome["error"]
    assert result.stdout == "before\n"


def test_execution_timeout_fails_the_task() -> None:
    source = (
        "from ledgerflow.sdk import DAG, BashOperator\n"
        "with DAG('slow'):\n"
        "    BashOperator(task_id='x', bash_command='sleep 30', execution_timeout=0.5)\n"
    )
    result = run_task(source, "slow", "x")
    assert result.outcome["error_type"] == "AirflowTaskTimeout"
    assert result.outcome["retryable"] is True


@pytest.mark.parametrize(
    ("source", "dag_id", "task_id", "error_type", "retryable"),
    [
        (DIAMOND, "nope", "a", "DagNotFound", False),
        (DIAMOND, "diamond", "nope", "TaskNotFound", False),
        ("def broken(:\n", "diamond", "a", "DagFileError", False),
        ("import ledgerflow_no_such_module\n", "diamond", "a", "DagFileError", True),
    ],
)
def test_runner_failures_before_the_task_runs(
    source: str, dag_id: str, task_id: str, error_type: str, retryable: bool
) -> None:
    result = run_task(source, dag_id, task_id)
    assert result.outcome["status"] == "failed"
    assert (result.outcome["error_type"], result.outcome["retryable"]) == (error_type, retryable)


def test_fail_exception_is_not_retryable() -> None:
    source = (
        "from ledgerflow.sdk import DAG, PythonOperator, AirflowFailException\n"
        "def stop():\n"
        "    raise AirflowFailException('no point retrying')\n"
        "with DAG('f'):\n"
        "    PythonOperator(task_id='x', python_callable=stop, retries=3)\n"
    )
    outcome = run_task(source, "f", "x").outcome
    assert (outcome["error_type"], outcome["retryable"]) == ("AirflowFailException", False)


def test_skipped_and_rescheduled_outcomes_exit_zero() -> None:
    source = (
        "from datetime import datetime, timezone\n"
        "from ledgerflow.sdk import DAG, PythonOperator\n"
        "from ledgerflow.sdk.exceptions import AirflowSkipException, AirflowRescheduleException\n"
        "def skip():\n"
        "    raise AirflowSkipException('not today')\n"
        "def later():\n"
        "    raise AirflowRescheduleException(datetime(2024, 5, 1, 13, tzinfo=timezone.utc))\n"
        "with DAG('s'):\n"
        "    PythonOperator(task_id='skip', python_callable=skip)\n"
        "    PythonOperator(task_id='later', python_callable=later)\n"
    )
    skipped = run_task(source, "s", "skip")
    assert skipped.outcome["status"] == "skipped"
    assert skipped.outcome["reason"] == "not today"
    assert skipped.returncode == 0
    rescheduled = run_task(source, "s", "later")
    assert rescheduled.outcome == {
        "status": "rescheduled",
        "reschedule_date": "2024-05-01T13:00:00+00:00",
    }
    assert rescheduled.returncode == 0


def test_template_files_shipped_as_extra_files() -> None:
    source = (
        "from ledgerflow.sdk import DAG, BashOperator\n"
        "with DAG('tpl'):\n"
        "    BashOperator(task_id='x', bash_command='{% include \"scripts/run.sh\" %}',\n"
        "                 env={'DAY': '{{ ds }}'})\n"
    )
    result = run_task(
        source, "tpl", "x", extra_files={"scripts/run.sh": "echo day=$DAY run={{ run_id }}"}
    )
    assert result.outcome["status"] == "success", result.stderr
    assert result.outcome["return_value"] == "day=2024-05-01 run=manual__1"
    assert result.outcome["rendered_fields"]["env"] == {"DAY": "2024-05-01"}


def test_sigterm_fails_the_attempt_and_stops_the_command() -> None:
    import signal
    import time

    source = (
        "from ledgerflow.sdk import DAG, BashOperator\n"
        "with DAG('term'):\n"
        "    BashOperator(task_id='x', bash_command='echo started; sleep 30')\n"
    )
    request = {
        "source": source,
        "filename": "dags/term.py",
        "dag_id": "term",
        "task_id": "x",
        "try_number": 1,
        "max_tries": 1,
    }
    read_end, write_end = os.pipe()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ledgerflow.sdk.runner", "--outcome-fd", str(write_end)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        pass_fds=(write_end,),
    )
    os.close(write_end)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps(request))
    proc.stdin.close()
    assert proc.stdout.readline() == "started\n"
    time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    with os.fdopen(read_end) as pipe:
        outcome = json.loads(pipe.read())
    assert outcome["status"] == "failed"
    assert outcome["error_type"] == "AirflowTaskTerminated"
    assert proc.returncode == 1


def test_a_killed_runner_leaves_a_folder_its_reaper_removes(tmp_path: Path) -> None:
    from ledgerflow.sdk.runner_support import remove_private_dirs

    source = (
        "import os\n"
        "from ledgerflow.sdk import DAG, PythonOperator\n"
        "with DAG('crash'):\n"
        "    PythonOperator(task_id='x', python_callable=lambda: os._exit(7))\n"
    )
    request = {"source": source, "filename": "dags/crash.py", "dag_id": "crash", "task_id": "x"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ledgerflow.sdk.runner", "--outcome-fd", "1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    proc.communicate(json.dumps(request), timeout=60)
    assert proc.returncode == 7
    (left,) = tmp_path.iterdir()
    assert left.name.startswith(f"ledgerflow-task-{proc.pid}-")
    assert [p.name for p in left.iterdir()] == ["crash.py"]
    assert remove_private_dirs(proc.pid + 1, str(tmp_path)) == 0
    assert remove_private_dirs(proc.pid, str(tmp_path)) == 1
    assert list(tmp_path.iterdir()) == []
