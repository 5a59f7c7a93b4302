"""Warm DAG zygotes (ADR 0017): attempts of one DAG file fork from a process that loaded
the file once, with the fork server's protocol unchanged."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from ledgerflow.executor.forkserver import ForkServer
from ledgerflow.executor.zygote import MAX_ZYGOTES
from ledgerflow.sdk.warm import load_fields, warm_key


def _source(body: str, *, top: str = "", dag_id: str = "d") -> str:
    return textwrap.dedent(
        """
        import os
        from ledgerflow.sdk import DAG, task
        {top}
        with DAG("{dag_id}", schedule=None):
            @task
            def t():
        {body}
            t()
        """
    ).format(
        top=textwrap.dedent(top),
        dag_id=dag_id,
        body=textwrap.indent(textwrap.dedent(body), " " * 8),
    )


def _request(source: str, *, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "source": source,
        "filename": "d.py",
        "dag_id": "d",
        "task_id": "t",
        "run_id": "r",
        "map_index": -1,
        "try_number": 1,
        "conf": {},
        "variables": variables or {},
        "connections": {},
    }


async def _run(
    fs: ForkServer, req: dict[str, Any], *, env: dict[str, str] | None = None
) -> tuple[int, str, str, dict[str, Any] | None, int]:
    """(exit code, stdout, stderr, outcome, pid) of one attempt sent with its warm key."""
    warm = {"key": warm_key(req), "load": load_fields(req)}
    proc, stdin, outcome = await fs.spawn(env=env or dict(os.environ), warm=warm)
    stdin.write(json.dumps(req).encode())
    await stdin.drain()
    stdin.close()
    rc, out, err, raw = await asyncio.gather(
        proc.wait(), proc.stdout.read(), proc.stderr.read(), outcome.read()
    )
    return rc, out.decode(), err.decode(), json.loads(raw) if raw else None, proc.pid


def _server_pid(fs: ForkServer) -> int:
    assert fs._proc is not None
    return fs._proc.pid


def _children_of(ppid: int) -> list[int]:
    try:
        with open(f"/proc/{ppid}/task/{ppid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


async def _warm_parent(fs: ForkServer, req: dict[str, Any], timeout: float = 20.0) -> int:
    """Run attempts until one comes from a zygote (its parent is not the server);
    return that parent's pid."""
    server = _server_pid(fs)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rc, _out, _err, outcome, _pid = await _run(fs, req)
        assert rc == 0 and outcome is not None, outcome
        parent = int(outcome["return_value"]["ppid"])
        if parent != server:
            return parent
        await asyncio.sleep(0.05)
    raise AssertionError("no attempt came from a zygote")


async def _sleeping_attempt_of_a_zygote(fs: ForkServer) -> tuple[int, Any]:
    """(the zygote's pid, an attempt it forked that sleeps for a minute)."""
    source = _source(
        """
        import time
        if os.environ.get("SLEEP"):
            time.sleep(60)
        return {"ppid": os.getppid()}
        """
    )
    req = _request(source)
    zygote = await _warm_parent(fs, req)
    warm = {"key": warm_key(req), "load": load_fields(req)}
    proc, stdin, _outcome = await fs.spawn(env={**os.environ, "SLEEP": "1"}, warm=warm)
    stdin.write(json.dumps(req).encode())
    await stdin.drain()
    stdin.close()
    await asyncio.sleep(0.5)
    return zygote, proc


@pytest.fixture
async def fs():
    server = ForkServer(env=dict(os.environ))
    await server.start()
    yield server
    await server.stop()


async def test_attempts_of_one_dag_file_fork_from_its_zygote_which_loaded_it_once(
    fs: ForkServer, tmp_path: Path
) -> None:
    loads = tmp_path / "loads"
    top = f"open({str(loads)!r}, 'a').write('x')"
    req = _request(_source('return {"ppid": os.getppid()}', top=top))
    zygote = await _warm_parent(fs, req)
    before = loads.read_text()
    for _ in range(5):
        rc, _out, _err, outcome, pid = await _run(fs, req)
        assert rc == 0 and outcome is not None
        assert outcome["return_value"]["ppid"] == zygote
        assert pid != zygote
    # Five more attempts, not one more load of the file.
    assert loads.read_text() == before
    assert zygote in _children_of(_server_pid(fs))


async def test_other_variables_mean_another_load(fs: ForkServer, tmp_path: Path) -> None:
    loads = tmp_path / "loads"
    top = f"open({str(loads)!r}, 'a').write('x')"
    source = _source('return {"ppid": os.getppid()}', top=top)
    first = await _warm_parent(fs, _request(source, variables={"v": "1"}))
    second = await _warm_parent(fs, _request(source, variables={"v": "2"}))
    assert first != second


async def test_attempts_from_a_zygote_keep_the_fork_servers_protocol(fs: ForkServer) -> None:
    probe = _request(_source('return {"ppid": os.getppid()}'))
    await _warm_parent(fs, probe)
    # Same file, so the same zygote: the task reads what it should do from the env.
    source = _source(
        """
        what = os.environ.get("WHAT", "")
        if what == "exit":
            os._exit(3)
        if what == "segv":
            import ctypes
            ctypes.string_at(0)
        print("out:" + os.environ.get("ONLY_HERE", ""))
        return {"ppid": os.getppid()}
        """
    )
    req = _request(source)
    zygote = await _warm_parent(fs, req)
    env = {**os.environ, "ONLY_HERE": "yes"}
    rc, out, _err, outcome, _pid = await _run(fs, req, env=env)
    assert (rc, out) == (0, "out:yes\n")
    assert outcome is not None and outcome["return_value"]["ppid"] == zygote
    rc, _out, _err, outcome, _pid = await _run(fs, req, env={**os.environ, "WHAT": "exit"})
    assert (rc, outcome) == (3, None)
    rc, _out, _err, outcome, _pid = await _run(fs, req, env={**os.environ, "WHAT": "segv"})
    assert rc == -signal.SIGSEGV and outcome is None
    # The zygote survives its attempts' crashes.
    rc, _out, _err, outcome, _pid = await _run(fs, req, env=env)
    assert rc == 0 and outcome is not None and outcome["return_value"]["ppid"] == zygote


async def test_a_file_that_fails_to_load_gets_no_zygote_and_each_attempt_reports_it(
    fs: ForkServer,
) -> None:
    req = _request(_source("return 1", top="raise RuntimeError('broken at import')"))
    for _ in range(4):
        rc, _out, err, outcome, _pid = await _run(fs, req)
        assert rc == 1 and outcome is not None
        assert outcome["status"] == "failed"
        assert "broken at import" in outcome["error"]
        assert "d.py" in outcome["error"] or "d.py" in err
        await asyncio.sleep(0.1)
    assert _children_of(_server_pid(fs)) == []  # the failed zygote is gone, none retried


async def test_a_running_attempt_of_a_zygote_is_killed_by_its_process_group(
    fs: ForkServer,
) -> None:
    zygote, proc = await _sleeping_attempt_of_a_zygote(fs)
    assert proc.pid in _children_of(zygote)
    os.killpg(proc.pid, signal.SIGKILL)
    assert await asyncio.wait_for(proc.wait(), 10) == -signal.SIGKILL


async def test_when_the_server_stops_its_zygotes_and_their_attempts_go() -> None:
    fs = ForkServer(env=dict(os.environ))
    await fs.start()
    zygote, proc = await _sleeping_attempt_of_a_zygote(fs)
    await fs.stop()
    assert await asyncio.wait_for(proc.wait(), 10) < 0
    for pid in (zygote, proc.pid):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


async def test_at_most_a_few_zygotes_the_least_recently_used_goes_first(
    fs: ForkServer,
) -> None:
    parents = []
    for n in range(MAX_ZYGOTES + 1):
        req = _request(_source(f'return {{"ppid": os.getppid(), "n": {n}}}'))
        parents.append(await _warm_parent(fs, req))
    for _ in range(200):  # up to 10 s for the evicted zygote to exit and be reaped
        if parents[0] not in _children_of(_server_pid(fs)):
            break
        await asyncio.sleep(0.05)
    alive = set(_children_of(_server_pid(fs)))
    assert parents[0] not in alive  # the oldest quit once its attempts were done
    assert set(parents[1:]) <= alive
