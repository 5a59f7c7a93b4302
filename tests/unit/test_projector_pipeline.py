"""The projector's run loop fetches ahead while a batch is in Postgres: every fetched
record must be applied exactly once, in order, however fetches and batches interleave
(a record whose fetch result is dropped is skipped for good: the consumer has moved on).

A scripted projector stands in for Kafka and Postgres: its fetches return the next
records of one partition, its batches take a few milliseconds."""

from __future__ import annotations

import asyncio
import random
from types import SimpleNamespace
from typing import Any

from aiokafka import TopicPartition
from ledgerflow.api.projector import BatchResult, Projector
from ledgerflow.api.projector_records import Fetched
from ledgerflow.common.settings import Settings

TP = TopicPartition("p.runs", 0)
TOTAL = 300


class ScriptedProjector(Projector):
    def __init__(self, seed: int) -> None:
        super().__init__(Settings())
        self.rng = random.Random(seed)
        self.next_offset = 0
        self.applied: list[int] = []
        self.batches: list[int] = []
        self.idle_advances = 0

    async def _fetch(self, *, timeout_ms: int, pause_s: float = 0.0) -> Fetched:
        await asyncio.sleep(self.rng.choice((0, 0, 0.001, 0.002)))
        if self.next_offset >= TOTAL:
            await asyncio.sleep(0.005)  # nothing more: an empty fetch after a while
            return Fetched()
        n = min(self.rng.randint(1, 7), TOTAL - self.next_offset)
        records = [
            (SimpleNamespace(offset=o), object())
            for o in range(self.next_offset, self.next_offset + n)
        ]
        self.next_offset += n
        return Fetched({TP: records})

    async def _apply(self, fetched: Fetched) -> BatchResult:
        offsets: list[Any] = [record.offset for record, _ in fetched.records.get(TP, [])]
        await asyncio.sleep(self.rng.choice((0.001, 0.003, 0.008)))
        self.applied += offsets
        self.batches.append(len(offsets))
        return BatchResult(applied=len(offsets))

    async def _advance_idle(self, *, force: bool = False) -> None:
        self.idle_advances += 1


async def _run_until_applied(p: ScriptedProjector) -> None:
    task = asyncio.create_task(p._run_pipelined(after_batch=lambda: None))
    try:
        async with asyncio.timeout(20):
            while len(p.applied) < TOTAL or p.idle_advances == 0:  # noqa: ASYNC110
                await asyncio.sleep(0.005)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_every_fetched_record_is_applied_once_in_order() -> None:
    for seed in range(5):
        p = ScriptedProjector(seed)
        asyncio.run(_run_until_applied(p))
        assert p.applied == list(range(TOTAL)), seed
        assert len(p.batches) < TOTAL  # fetches ahead join into batches


def test_a_full_batch_stops_fetching_ahead_without_dropping_a_fetch() -> None:
    for seed in range(5):
        p = ScriptedProjector(seed)
        p.max_batch = 4  # reached while most batches are in flight
        asyncio.run(_run_until_applied(p))
        assert p.applied == list(range(TOTAL)), seed


class FakeConnection:
    def __init__(self, p: ScriptedProjector) -> None:
        self.p = p
        self.statements: list[tuple[str, int]] = []  # and how many records were applied

    def is_closed(self) -> bool:
        return False

    async def execute(self, sql: str) -> None:
        self.statements.append((sql, len(self.p.applied)))


class ResyncingProjector(ScriptedProjector):
    """Its first batch commits beginning the next one's transaction (the next batch was
    ready), then finds the partition's stored offset moved: what was fetched ahead is
    dropped, so the transaction begun for it must end."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.conn = FakeConnection(self)
        self.seeks = 0

    async def _apply(self, fetched: Fetched) -> BatchResult:
        if self.seeks:
            return await super()._apply(fetched)
        await asyncio.sleep(0.01)  # long enough for records to be fetched ahead
        self._begun = self.conn  # type: ignore[assignment]
        return BatchResult(resynced=[TP])

    def _seek(self, partitions: list[TopicPartition]) -> None:
        assert partitions == [TP]
        self.seeks += 1
        self.next_offset = 0  # the stored offset: read again from there


def test_a_transaction_begun_for_a_batch_a_seek_dropped_is_ended() -> None:
    for seed in range(3):
        p = ResyncingProjector(seed)
        asyncio.run(_run_until_applied(p))
        assert p.seeks == 1
        # Ended at once, before the batches after the seek (not when the loop stops).
        assert p.conn.statements == [("ROLLBACK", 0)], seed
        assert p.applied == list(range(TOTAL)), seed


def test_young_tables_are_analyzed_each_time_the_applied_events_double() -> None:
    """Postgres keeps the plan it made for a statement while the tables were small: the
    projector analyzes them after 1,000 applied events, 2,000, 4,000, ... (one analysis
    at a time, started by a commit)."""

    class Analyzing(ScriptedProjector):
        def __init__(self) -> None:
            super().__init__(0)
            self.analyzed_at: list[int] = []

        async def _analyze(self) -> None:
            self.analyses += 1
            self.analyzed_at.append(self._applied)
            self._analyzing = None

    async def analyzed(applied_per_batch: int, batches: int) -> tuple[list[int], list[str]]:
        p = Analyzing()
        conn = FakeConnection(p)
        for _ in range(batches):
            p._applied += applied_per_batch
            await p._commit(conn)  # type: ignore[arg-type]
            await asyncio.sleep(0)  # the analysis runs
        return p.analyzed_at, [sql for sql, _ in conn.statements]

    at, sent = asyncio.run(analyzed(300, 30))  # 300, 600, ..., 9,000 events
    assert at == [1200, 2100, 4200, 8100]
    assert sent == ["COMMIT"] * 30  # the batches' commits carry nothing else
