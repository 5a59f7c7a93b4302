"""The child-process part of the executor: environment, outcome protocol, streaming,
timeouts and crashes. Uses small stand-in runner scripts (``python -c``), no Kafka."""

from __future__ import annotations

import asyncio
import sys
import time

from ledgerflow.executor.child import TaskProcess, child_environment, outcome_from


def _runner(code: str) -> list[str]:
    return [sys.executable, "-c", code]


class Lines:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str, float]] = []

    def __call__(self, stream: str, text: str) -> None:
        self.lines.append((stream, text, time.monotonic()))

    def texts(self, stream: str) -> list[str]:
        return [t for s, t, _ in self.lines if s == stream]


def test_child_environment_drops_secrets() -> None:
    env = child_environment(
        {
            "PATH": "/bin",
            "LEDGERFLOW_ADMIN_PASSWORD": "x",
            "LEDGERFLOW_SECRET_KEY": "x",
            "LEDGERFLOW_DATABASE_URL": "postgresql://u:p@h/db",
            "LEDGERFLOW_S3_TOKEN": "x",
            "LEDGERFLOW_KAFKA_BOOTSTRAP": "k:9092",
        }
    )
    assert env["PATH"] == "/bin"
    assert env["LEDGERFLOW_KAFKA_BOOTSTRAP"] == "k:9092"
    assert env["PYTHONUNBUFFERED"] == "1"
    for gone in ("ADMIN_PASSWORD", "SECRET_KEY", "DATABASE_URL", "S3_TOKEN"):
        assert f"LEDGERFLOW_{gone}" not in env


def test_outcome_from_exit_status() -> None:
    assert outcome_from(b"", 3).error == "process exited with code 3"
    assert outcome_from(b"", -11).error == "killed by signal SIGSEGV"
    ok = outcome_from(b'{"status":"success","return_value":{"a":1}}\n', 0)
    assert ok.status == "success" and ok.return_value == {"a": 1}
    bad = outcome_from(
        b'{"status":"failed","error":"E","error_type":"ValueError","retryable":false}', 1
    )
    assert (bad.status, bad.error, bad.error_type, bad.retryable) == (
        "failed",
        "E",
        "ValueError",
        False,
    )
    assert outcome_from(b"garbage", 0).error_type == "RunnerProtocolError"


async def test_payload_on_stdin_outcome_on_fd3_and_lines_stream() -> None:
    code = (
        "import json,os,sys,time\n"
        "req=json.load(sys.stdin)\n"
        "print('first', flush=True); time.sleep(0.4)\n"
        "print('to-stderr', file=sys.stderr, flush=True)\n"
        "print('last', flush=True)\n"
        "os.write(3, (json.dumps({'status':'success','return_value':req['task_id']})+'\\n').encode())\n"
    )
    lines = Lines()
    proc = TaskProcess({"task_id": "t1"}, on_line=lines, argv=_runner(code), env={})
    pid = await proc.start()
    assert pid > 0
    started = time.monotonic()
    outcome = await proc.wait()
    assert outcome.status == "success" and outcome.return_value == "t1"
    assert lines.texts("stdout") == ["first", "last"]
    assert lines.texts("stderr") == ["to-stderr"]
    # "first" arrived while the child was still sleeping: streamed, not read at exit.
    first_at = next(at for s, t, at in lines.lines if t == "first")
    assert first_at - started < 0.35


async def test_crash_without_outcome_reports_exit_code() -> None:
    proc = TaskProcess({}, on_line=Lines(), argv=_runner("import os; os._exit(3)"), env={})
    await proc.start()
    outcome = await proc.wait()
    assert outcome.status == "failed" and outcome.error == "process exited with code 3"


async def test_segfault_reports_signal() -> None:
    code = "import os,signal; os.kill(os.getpid(), signal.SIGSEGV)"
    proc = TaskProcess({}, on_line=Lines(), argv=_runner(code), env={})
    await proc.start()
    outcome = await proc.wait()
    assert outcome.error == "killed by signal SIGSEGV"


async def test_timeout_kills_the_whole_process_group() -> None:
    # The child starts a grandchild that would outlive it if only the child were killed.
    code = (
        "import subprocess,sys,time\n"
        "p=subprocess.Popen(['sleep','30'])\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(30)\n"
    )
    lines = Lines()
    proc = TaskProcess({}, on_line=lines, argv=_runner(code), env={})
    await proc.start()
    t0 = time.monotonic()
    outcome = await proc.wait(execution_timeout=0.5)
    assert time.monotonic() - t0 < 5
    assert outcome.status == "failed" and outcome.error_type == "AirflowTaskTimeout"
    assert "execution_timeout of 0.5 s" in (outcome.error or "")
    grandchild = int(lines.texts("stdout")[0])
    await asyncio.sleep(0.2)
    assert not _alive(grandchild)


def _alive(pid: int) -> bool:
    """True if ``pid`` runs (a zombie waiting to be reaped by init counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def test_abort_kills_and_fails_with_reason() -> None:
    proc = TaskProcess({}, on_line=Lines(), argv=_runner("import time; time.sleep(30)"), env={})
    await proc.start()
    asyncio.get_running_loop().call_later(0.2, proc.abort, "shutting down")
    outcome = await proc.wait()
    assert outcome.error == "shutting down" and outcome.error_type == "ExecutorShutdown"


async def test_real_runner_accepts_the_payload() -> None:
    from ledgerflow.executor.attempt import runner_payload  # noqa: F401  (shape lives there)
    from ledgerflow.executor.child import RUNNER_ARGV

    source = (
        "from ledgerflow.sdk import DAG, task\n"
        "with DAG('d1', schedule=None):\n"
        "    @task\n"
        "    def hello():\n"
        "        print('hi from task')\n"
        "        return 42\n"
        "    hello()\n"
    )
    payload = {
        "source": source,
        "filename": "d1.py",
        "dag_id": "d1",
        "task_id": "hello",
        "run_id": "r1",
        "map_index": -1,
        "try_number": 1,
        "conf": {},
        "logical_date": None,
        "upstream_xcoms": {},
    }
    lines = Lines()
    proc = TaskProcess(payload, on_line=lines, argv=RUNNER_ARGV)
    await proc.start()
    outcome = await proc.wait(execution_timeout=30)
    assert outcome.status == "success", (outcome, lines.lines)
    assert outcome.return_value == 42
    assert "hi from task" in lines.texts("stdout")
