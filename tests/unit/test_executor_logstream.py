"""Log chunking: order, numbering, flush rules and the size cap, with a fake producer."""

from __future__ import annotations

import asyncio
from typing import Any

from ledgerflow.common.events import Envelope, RunTaskAttempt
from ledgerflow.executor.logstream import AttemptLogStream


class FakeProducer:
    """Records what would be sent; acknowledges at once."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Envelope, str | None]] = []

    async def send_soon(
        self, topic: str, envelope: Envelope, *, key: str | None = None, traceparent: Any = None
    ) -> asyncio.Future[None]:
        self.sent.append((topic, envelope, key))
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut


ITEM = RunTaskAttempt(
    dag_id="d", run_id="r", task_id="t", try_number=2, version_id="v", queue="default"
)


def _stream(producer: FakeProducer, **kw: Any) -> AttemptLogStream:
    return AttemptLogStream(producer, "logs", ITEM, source="test", causation_id="c", **kw)


async def test_chunks_are_ordered_numbered_and_keyed_by_attempt() -> None:
    p = FakeProducer()
    logs = _stream(p)
    for i in range(250):
        logs.write("stdout", f"l{i}")
    await logs.close()
    chunks = [env.data for _, env, _ in p.sent]
    assert [c.chunk for c in chunks] == [0, 1, 2]  # 100 + 100 + final 50
    assert [len(c.lines) for c in chunks] == [100, 100, 50]
    assert [ln.text for c in chunks for ln in c.lines] == [f"l{i}" for i in range(250)]
    assert {key for _, _, key in p.sent} == {"d/r/t/-1/2"}
    assert all(c.try_number == 2 for c in chunks)


async def test_a_quiet_task_still_flushes_within_50ms() -> None:
    p = FakeProducer()
    logs = _stream(p)
    logs.write("stderr", "one line")
    await asyncio.sleep(0.15)
    assert len(p.sent) == 1 and p.sent[0][1].data.lines[0].text == "one line"
    await logs.close()


async def test_cap_is_stated_and_the_rest_dropped() -> None:
    p = FakeProducer()
    logs = _stream(p, cap_bytes=1000)
    for i in range(100):
        logs.write("stdout", f"{i:03d}" + "x" * 96)  # 99 bytes + newline each
    await logs.close()
    lines = [ln for _, env, _ in p.sent for ln in env.data.lines]
    stdout = [ln.text for ln in lines if ln.stream == "stdout"]
    assert len(stdout) == 10  # ten lines of 100 bytes fill the cap exactly
    system = [ln.text for ln in lines if ln.stream == "system"]
    assert "cap of 1000 bytes" in system[0]
    assert system[-1].endswith("bytes of output were dropped")
