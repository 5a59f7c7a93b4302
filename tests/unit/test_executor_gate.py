"""The start gate (docs/adr/0010): a task process gets its request, and so runs the
task, only once the executor has its start acknowledged; killed before that, it never
ran the task at all."""

from __future__ import annotations

import asyncio
import sys
import time

from ledgerflow.executor.child import TaskProcess

CHILD = (
    "import json,os,sys\n"
    "req=json.load(sys.stdin)\n"
    "print('ran', req['task_id'], flush=True)\n"
    "os.write(3, (json.dumps({'status':'success'})+'\\n').encode())\n"
)


class Lines:
    def __init__(self) -> None:
        self.lines: list[tuple[str, float]] = []

    def __call__(self, stream: str, text: str) -> None:
        self.lines.append((text, time.monotonic()))


async def test_the_request_waits_for_the_gate() -> None:
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    lines = Lines()
    proc = TaskProcess(
        {"task_id": "t1"}, on_line=lines, argv=[sys.executable, "-c", CHILD], env={}, gate=gate
    )
    await proc.start()
    opened = time.monotonic() + 0.5
    asyncio.get_running_loop().call_later(0.5, gate.set_result, None)
    outcome = await proc.wait()
    assert outcome.status == "success"
    [(text, at)] = lines.lines
    assert text == "ran t1" and at >= opened - 0.05


async def test_killed_before_the_gate_opens_the_task_never_ran() -> None:
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    lines = Lines()
    proc = TaskProcess(
        {"task_id": "t1"}, on_line=lines, argv=[sys.executable, "-c", CHILD], env={}, gate=gate
    )
    await proc.start()
    asyncio.get_running_loop().call_later(0.3, proc.abort, "executor stopping")
    outcome = await proc.wait()
    assert outcome.error == "executor stopping"
    assert lines.lines == []
