"""Liveness and control of running attempts: heartbeats out, cancels in.

- :class:`Heartbeats` reports every started attempt of this executor on the run log
  every ``LEDGERFLOW_HEARTBEAT_INTERVAL_SECONDS`` (one ``TaskAttemptHeartbeat`` per
  attempt per interval, batched with ``send_soon``); the scheduler fails an attempt it
  has not heard of for ``LEDGERFLOW_ZOMBIE_TIMEOUT_SECONDS`` as a zombie.
- :class:`ControlListener` reads ``<prefix>.control`` without a consumer group, from the
  latest offset at start (every executor sees every cancel; a cancel sent while this
  executor was down concerns attempts that are zombies anyway), and hands each
  ``CancelTaskAttempt`` to a callback.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from ledgerflow.common.events import (
    CancelTaskAttempt,
    MalformedMessage,
    TaskAttemptHeartbeat,
    deterministic_id,
    make_envelope,
)
from ledgerflow.common.kafka_io import background_consumer_config, decode_record, stop_reader
from ledgerflow.common.settings import Settings
from ledgerflow.executor.recent import AttemptId

log = logging.getLogger(__name__)

SOURCE = "ledgerflow/executor"


class Heartbeats:
    """Sends one heartbeat per running attempt per interval until stopped."""

    def __init__(
        self,
        producer: Any,
        runs_topic: str,
        executor_id: str,
        interval: float,
        running: Callable[[], Iterable[AttemptId]],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._producer = producer
        self._topic = runs_topic
        self._executor_id = executor_id
        self._interval = interval
        self._running = running
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def beat(self) -> int:
        """Send one heartbeat for each running attempt; returns how many were sent."""
        now = self._clock()
        futures = []
        for dag_id, run_id, task_id, map_index, try_number in list(self._running()):
            data = TaskAttemptHeartbeat(
                dag_id=dag_id,
                run_id=run_id,
                task_id=task_id,
                map_index=map_index,
                try_number=try_number,
                executor_id=self._executor_id,
                at=now,
            )
            env = make_envelope(
                data,
                id=deterministic_id(
                    "TaskAttemptHeartbeat",
                    dag_id,
                    run_id,
                    task_id,
                    map_index,
                    try_number,
                    self._executor_id,
                    now.isoformat(),
                ),
                source=SOURCE,
                time=now,
                aggregate_key=dag_id,
                correlation_id=run_id,
            )
            futures.append(await self._producer.send_soon(self._topic, env))
        results = await asyncio.gather(*futures, return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:  # the next beat tries again; the zombie timeout allows for several
            log.warning("%d heartbeats were not acknowledged: %r", len(failed), failed[0])
        return len(futures)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.beat()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("heartbeat round failed")


class CancelledAttempts:
    """A bounded memory of cancelled attempts, so a work item that arrives after its
    cancel is never run."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._items: OrderedDict[AttemptId, CancelTaskAttempt] = OrderedDict()

    def add(self, cancel: CancelTaskAttempt) -> None:
        aid = attempt_id(cancel)
        self._items[aid] = cancel
        self._items.move_to_end(aid)
        while len(self._items) > self._capacity:
            self._items.popitem(last=False)

    def get(self, aid: AttemptId) -> CancelTaskAttempt | None:
        return self._items.get(aid)


def attempt_id(ref: Any) -> AttemptId:
    return (ref.dag_id, ref.run_id, ref.task_id, ref.map_index, ref.try_number)


class ControlListener:
    """Reads the control topic from its end at start; calls ``on_cancel`` for each
    ``CancelTaskAttempt``. ``start()`` returns once positioned, so no cancel sent after
    it is missed."""

    def __init__(self, settings: Settings, on_cancel: Callable[[CancelTaskAttempt], None]) -> None:
        self._settings = settings
        self._on_cancel = on_cancel
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._consumer is not None:
            return
        consumer = AIOKafkaConsumer(
            **{**background_consumer_config(self._settings), "group_id": None}
        )
        await consumer.start()
        tp = TopicPartition(self._settings.topics.control, 0)
        consumer.assign([tp])
        await consumer.seek_to_end(tp)
        await consumer.position(tp)  # resolve the end offset now, not lazily
        self._consumer = consumer
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        task, self._task = self._task, None
        consumer, self._consumer = self._consumer, None
        await stop_reader(task, consumer)

    async def _loop(self) -> None:
        assert self._consumer is not None
        while True:
            batch = await self._consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                for record in records:
                    try:
                        env = decode_record(record)
                    except MalformedMessage as exc:
                        log.warning("unreadable control message at %s: %s", record.offset, exc)
                        continue
                    if isinstance(env.data, CancelTaskAttempt):
                        try:
                            self._on_cancel(env.data)
                        except Exception:
                            log.exception("handling %s failed", env.id)
