"""The pool arbiter as a service role (ADR 0011): the scheduler instance that owns
partition 0 of the run log also grants pool slots for every DAG.

It reads the whole run log (every partition, no consumer group) and the config topic
(pool sizes) into a :class:`~ledgerflow.common.core.arbiter.PoolBook`, replaying from
the beginning when it takes the role, and writes ``PoolSlotsGranted`` to the run log.
The scheduler also hands it the requests it decides itself (:meth:`offer`), so on a
single scheduler a grant costs no extra trip through Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from ledgerflow.common.core.arbiter import PoolBook
from ledgerflow.common.events import Envelope, MalformedMessage, decode
from ledgerflow.common.kafka_io import EventProducer, consumer_config, stop_reader
from ledgerflow.common.settings import Settings

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


class PoolArbiter:
    """``start()`` replays and begins granting; ``stop()`` (twice is harmless) ends the
    role. ``on_grants`` sees every grant this arbiter decides (the scheduler queues the
    ones of its own DAGs at once)."""

    def __init__(
        self,
        settings: Settings,
        producer: EventProducer,
        on_grants: Callable[[list[Envelope]], Any] | None = None,
    ) -> None:
        self.settings = settings
        self.producer = producer
        self.on_grants = on_grants
        self.book = PoolBook()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._consumer is not None:
            return
        topics = self.settings.topics
        consumer = AIOKafkaConsumer(**{**consumer_config(self.settings), "group_id": None})
        await consumer.start()
        tps = [TopicPartition(topics.runs, p) for p in range(self.settings.partitions)]
        tps.append(TopicPartition(topics.config, 0))
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        self._consumer = consumer
        self.book = PoolBook()
        ends = await consumer.end_offsets(tps)
        count = 0
        while not await _caught_up(consumer, ends):
            count += self._fold(await consumer.getmany(timeout_ms=1000))
        log.info(
            "pool arbiter replayed %d events; %d claims, usage %s",
            count,
            len(self.book.claims),
            dict(self.book.usage()),
        )
        await self.grant()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        task, self._task = self._task, None
        consumer, self._consumer = self._consumer, None
        await stop_reader(task, consumer)
        if consumer is not None:
            log.info("pool arbiter stopped")

    def _fold(self, batch: dict[Any, list[Any]]) -> int:
        n = 0
        for records in batch.values():
            for record in records:
                try:
                    env = decode(record.value)
                except MalformedMessage:
                    continue
                self.book.apply(env)
                n += 1
        return n

    def offer(self, env: Envelope) -> None:
        """A request this instance just decided (its copy from the log is a repeat)."""
        self.book.apply(env)

    def due_grants(self) -> list[Envelope]:
        """The grants due now, already folded; the caller writes them (the in-process
        path of :meth:`Scheduler._grant_local`)."""
        return list(self.book.arbitrate(now=_now()))

    async def grant(self) -> list[Envelope]:
        """Write the grants due now and wait for their acks."""
        grants: list[Envelope] = list(self.book.arbitrate(now=_now()))
        if not grants:
            return grants
        futures = [await self.producer.send_soon(self.settings.topics.runs, g) for g in grants]
        await asyncio.gather(*futures)
        if self.on_grants is not None:
            result = self.on_grants(grants)
            if asyncio.iscoroutine(result):
                await result
        return grants

    async def _loop(self) -> None:
        assert self._consumer is not None
        while True:
            try:
                self._fold(await self._consumer.getmany(timeout_ms=1000))
                await self.grant()
            except asyncio.CancelledError:
                raise
            except Exception:
                # Grants folded but not written would hold slots forever: rebuild the
                # book from the log (level-triggered, so what is due is granted again).
                log.exception("pool arbiter failed; rebuilding from the run log")
                consumer, self._consumer = self._consumer, None
                with contextlib.suppress(Exception):
                    await consumer.stop()
                await asyncio.sleep(1.0)
                self._task = None
                await self.start()
                return


async def _caught_up(consumer: AIOKafkaConsumer, ends: dict[Any, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True
