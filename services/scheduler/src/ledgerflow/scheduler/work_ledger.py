"""Recovery check: was this work item already sent before the scheduler died?

Used only while recovering a partition, never on the hot path. A work item's partition
follows from the attempt (:func:`work_partition`, ADR 0002: the sender and this lookup
use the same function), and its send time is close to the ``queued_when`` the log
recorded, so the lookup reads a short stretch of one partition from
``offsets_for_times``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]
from aiokafka.partitioner import murmur2  # type: ignore[import-untyped]
from ledgerflow.common.kafka_io import consumer_config
from ledgerflow.common.settings import Settings
from ledgerflow.common.topics import attempt_key

log = logging.getLogger(__name__)

CLOCK_SKEW = timedelta(seconds=60)


def partition_for(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for ``key``."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def work_partition(
    dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int, partitions: int
) -> int:
    """The work topic partition of an attempt (ADR 0002, "work items").

    The instances of a mapped task go round-robin over the partitions, from a start
    hashed from (DAG, run, task), so a 1,000-wide map gives every partition (and so
    every executor of the queue) the same share instead of a hash's uneven one; a
    retry moves one partition on. Other attempts hash their key, as Kafka's default
    partitioner would."""
    if map_index < 0:
        return partition_for(
            attempt_key(dag_id, run_id, task_id, map_index, try_number), partitions
        )
    start = partition_for(f"{dag_id}/{run_id}/{task_id}", partitions)
    return (start + map_index + try_number - 1) % partitions


class WorkLedger:
    """Looks up work item ids on a queue's topic. ``async with WorkLedger(settings)``."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> WorkLedger:
        self._consumer = AIOKafkaConsumer(**consumer_config(self._settings))
        await self._consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def sent_ids(self, topic: str, partition: int, since: datetime) -> set[str]:
        """Ids (``ce_id`` headers) of the messages on one partition since ``since``."""
        consumer = self._consumer
        assert consumer is not None
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        ts = int((since - CLOCK_SKEW).timestamp() * 1000)
        found = await consumer.offsets_for_times({tp: max(ts, 0)})
        end = (await consumer.end_offsets([tp]))[tp]
        start = found[tp].offset if found.get(tp) is not None else end
        if start >= end:
            return set()
        consumer.seek(tp, start)
        ids: set[str] = set()
        position = start
        while position < end:
            batch = await consumer.getmany(tp, timeout_ms=1000)
            records = batch.get(tp, [])
            if not records:
                break
            for r in records:
                position = r.offset + 1
                for hk, hv in r.headers or ():
                    if hk == "ce_id":
                        ids.add(bytes(hv).decode())
        return ids
