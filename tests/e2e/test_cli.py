"""The ``ledgerflow`` command against the real system, as a user types it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .system import System

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

pytestmark = pytest.mark.e2e

FAILING = """
from ledgerflow.sdk import DAG, BashOperator

with DAG("cli_fails"):
    BashOperator(task_id="boom", bash_command="echo about to fail; exit 3")
"""


def cli(system: System, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = system.env | {"LEDGERFLOW_PASSWORD": system.password}
    return subprocess.run(
        [sys.executable, "-m", "ledgerflow.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_submit_trigger_wait_show_and_logs(system: System, tmp_path: Path):
    r = cli(system, "dags", "submit", str(EXAMPLES / "hello.py"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    dag_id = "hello"
    system.wait_dag(dag_id)
    assert dag_id in cli(system, "dags", "list", cwd=tmp_path).stdout

    r = cli(system, "dags", "trigger", dag_id, "--conf", '{"who": "cli"}', "--wait", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    run_id = r.stdout.strip().splitlines()[-1]

    shown = cli(system, "runs", "show", dag_id, run_id, cwd=tmp_path)
    assert shown.returncode == 0 and "success" in shown.stdout, shown.stdout + shown.stderr


def test_trigger_wait_exits_non_zero_when_the_run_fails(system: System, tmp_path: Path):
    dag_file = tmp_path / "cli_fails.py"
    dag_file.write_text(FAILING)
    assert cli(system, "dags", "submit", str(dag_file), cwd=tmp_path).returncode == 0
    system.wait_dag("cli_fails")
    r = cli(system, "dags", "trigger", "cli_fails", "--wait", cwd=tmp_path)
    assert r.returncode == 1, (r.stdout, r.stderr)
    run_id = r.stdout.strip().splitlines()[-1]
    logs = cli(system, "tasks", "logs", "cli_fails", run_id, "boom", cwd=tmp_path)
    assert "about to fail" in logs.stdout, logs.stdout + logs.stderr


def test_bad_dag_file_prints_file_and_line(system: System, tmp_path: Path):
    r = cli(system, "dags", "submit", str(EXAMPLES / "bad_dags" / "cycle.py"), cwd=tmp_path)
    assert r.returncode == 1
    assert "cycle.py:14" in r.stderr, r.stderr
