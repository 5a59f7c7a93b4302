"""The fork server starts attempts from a warm process with the runner's protocol."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import tempfile
import textwrap

import pytest
from ledgerflow.executor.forkserver import ForkServer, ForkServerError


def _source(body: str) -> str:
    return textwrap.dedent(
        """
        from ledgerflow.sdk import DAG, task
        with DAG("d", schedule=None):
            @task
            def t():
        {body}
            t()
        """
    ).format(body=textwrap.indent(textwrap.dedent(body), " " * 8))


async def _run(fs: ForkServer, body: str, *, env=None, rlimit_as=None):
    req = {
        "source": _source(body),
        "filename": "d.py",
        "dag_id": "d",
        "task_id": "t",
        "run_id": "r",
        "map_index": -1,
        "try_number": 1,
        "conf": {},
    }
    proc, stdin, outcome = await fs.spawn(env=env or dict(os.environ), rlimit_as=rlimit_as)
    stdin.write(json.dumps(req).encode())
    await stdin.drain()
    stdin.close()
    # As TaskProcess does: the exit status is awaited alongside the pipes (an orphaned
    # child may hold them open until it is killed).
    rc, out, err, raw = await asyncio.gather(
        proc.wait(), proc.stdout.read(), proc.stderr.read(), outcome.read()
    )
    return rc, out.decode(), err.decode(), raw.decode()


def _children_of(ppid: int) -> list[int]:
    pids = []
    for p in os.listdir("/proc"):
        try:
            with open(f"/proc/{p}/stat") as f:
                if p.isdigit() and f.read().split()[3] == str(ppid):
                    pids.append(int(p))
        except OSError:
            continue
    return pids


@pytest.fixture
async def fs():
    server = ForkServer(env=dict(os.environ))
    await server.start()
    yield server
    await server.stop()


async def test_a_task_runs_with_the_runner_protocol(fs: ForkServer) -> None:
    rc, out, _err, raw = await _run(fs, 'print("hi")\nreturn {"n": 1}')
    assert rc == 0
    assert out == "hi\n"
    outcome = json.loads(raw)
    assert (outcome["status"], outcome["return_value"]) == ("success", {"n": 1})


async def test_attempts_run_concurrently_and_independently(fs: ForkServer) -> None:
    results = await asyncio.gather(
        *(_run(fs, f"import time; time.sleep(0.2)\nreturn {i}") for i in range(4))
    )
    assert [json.loads(r[3])["return_value"] for r in results] == [0, 1, 2, 3]


async def test_a_hard_exit_is_reported_as_the_exit_code(fs: ForkServer) -> None:
    rc, _out, _err, raw = await _run(fs, "import os\nos._exit(7)")
    assert (rc, raw) == (7, "")


async def test_a_segfault_is_reported_as_the_signal_and_the_server_survives(
    fs: ForkServer,
) -> None:
    rc, _out, _err, raw = await _run(fs, "import ctypes\nctypes.string_at(0)")
    assert rc == -signal.SIGSEGV and raw == ""
    rc, _out, _err, raw = await _run(fs, "return 1")
    assert rc == 0 and json.loads(raw)["return_value"] == 1


async def test_the_environment_comes_from_the_request(fs: ForkServer) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "ONLY_THIS": "yes"}
    rc, _out, _err, raw = await _run(
        fs,
        'import os\nreturn sorted(k for k in os.environ if k == "ONLY_THIS" or "SECRET" in k)',
        env=env,
    )
    assert rc == 0 and json.loads(raw)["return_value"] == ["ONLY_THIS"]


async def test_the_memory_limit_stops_a_greedy_task(fs: ForkServer) -> None:
    rc, _out, err, raw = await _run(
        fs, "x = bytearray(2 * 1024 ** 3)\nreturn len(x)", rlimit_as=1024**3
    )
    assert json.loads(raw)["status"] == "failed"
    assert "MemoryError" in json.loads(raw)["error"]


async def test_a_running_attempt_can_be_killed_by_its_process_group(fs: ForkServer) -> None:
    req_task = asyncio.ensure_future(_run(fs, "import time; time.sleep(30)"))
    await asyncio.sleep(0.5)
    # The child is a session leader: find it through the server's children.
    pids = _children_of(fs._proc.pid)
    assert pids
    for pid in pids:
        os.killpg(pid, signal.SIGKILL)
    rc, *_ = await asyncio.wait_for(req_task, 10)
    assert rc == -signal.SIGKILL


async def test_when_the_server_dies_running_attempts_end_as_killed() -> None:
    server = ForkServer(env=dict(os.environ))
    await server.start()
    try:
        task = asyncio.ensure_future(_run(server, "import time; time.sleep(30)"))
        await asyncio.sleep(0.5)
        server._proc.kill()
        rc, *_ = await asyncio.wait_for(task, 10)
        assert rc == -signal.SIGKILL
        with pytest.raises(ForkServerError):
            await server.spawn(env={})
        await server.ensure_started()
        rc, _out, _err, raw = await _run(server, "return 2")
        assert rc == 0 and json.loads(raw)["return_value"] == 2
    finally:
        await server.stop()


async def test_task_process_forks_through_the_server_and_cleans_its_tmpdir(
    fs: ForkServer,
) -> None:
    from ledgerflow.executor.child import TaskProcess

    lines: list[tuple[str, str]] = []
    request = {
        "source": _source(
            "import os, tempfile\n"
            "open(os.path.join(tempfile.gettempdir(), 'left-behind'), 'w').write('x')\n"
            "print('tmp', tempfile.gettempdir())\n"
            "return os.getppid()"
        ),
        "filename": "d.py",
        "dag_id": "d",
        "task_id": "t",
        "run_id": "r",
        "map_index": -1,
        "try_number": 1,
        "conf": {},
    }
    process = TaskProcess(request, on_line=lambda s, t: lines.append((s, t)), fork_server=fs)
    await process.start()
    outcome = await process.wait(30)
    assert outcome.status == "success", outcome
    assert outcome.return_value == fs._proc.pid  # forked by the server, not spawned
    tmp = next(t.split(" ", 1)[1] for s, t in lines if t.startswith("tmp "))
    assert tmp.startswith(tempfile.gettempdir()) and "lf-attempt-" in tmp
    assert not os.path.exists(tmp)  # noqa: ASYNC240
