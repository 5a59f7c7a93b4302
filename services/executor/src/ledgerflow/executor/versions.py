"""An in-memory cache of DAG versions, read from the DAG topic from its beginning.

The executor needs a version's source code to run its tasks. Every executor reads the
whole DAG topic itself (manual assignment of all partitions, no consumer group, no
commits), so any version ever published is available, and a work item that overtakes
its version (published an instant earlier) simply waits for it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from ledgerflow.common.events import DagVersionPublished, MalformedMessage
from ledgerflow.common.kafka_io import consumer_config, decode_record
from ledgerflow.common.settings import Settings

log = logging.getLogger(__name__)


async def topic_partitions(bootstrap: str, topic: str, *, wait_s: float = 10.0) -> list[int]:
    """The partition ids of ``topic``, waiting a little for a just-created topic.

    Asked of the admin client: a consumer's metadata only covers subscribed topics.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        deadline = asyncio.get_running_loop().time() + wait_s
        while True:
            described = await admin.describe_topics([topic])
            parts = sorted(
                p["partition"]
                for d in described
                if d.get("error_code") == 0
                for p in d.get("partitions", ())
            )
            if parts:
                return parts
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"topic {topic} has no partitions (does it exist?)")
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


class DagVersionCache:
    """``version_id -> DagVersionPublished``, filled by a background reader.

    ``start()``/``stop()``; a second ``stop()`` is harmless.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._versions: dict[str, DagVersionPublished] = {}
        self._waiters: dict[str, list[asyncio.Future[DagVersionPublished]]] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._versions)

    def peek(self, version_id: str) -> DagVersionPublished | None:
        return self._versions.get(version_id)

    def add(self, version: DagVersionPublished) -> None:
        """Remember a version and wake whoever waits for it (idempotent)."""
        if version.version_id in self._versions:
            return
        self._versions[version.version_id] = version
        for fut in self._waiters.pop(version.version_id, []):
            if not fut.done():
                fut.set_result(version)

    async def get(self, version_id: str, *, timeout: float) -> DagVersionPublished | None:  # noqa: ASYNC109 (a miss is a value, not an error)
        """The version, waiting up to ``timeout`` seconds for it to be read; None if it
        did not show up in time."""
        found = self._versions.get(version_id)
        if found is not None:
            return found
        fut: asyncio.Future[DagVersionPublished] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(version_id, []).append(fut)
        try:
            async with asyncio.timeout(timeout):
                return await fut
        except TimeoutError:
            return None
        finally:
            waiters = self._waiters.get(version_id)
            if waiters and fut in waiters:
                waiters.remove(fut)
                if not waiters:
                    del self._waiters[version_id]

    async def start(self) -> None:
        if self._consumer is not None:
            return
        topic = self._settings.topics.dags
        config: dict[str, Any] = {**consumer_config(self._settings), "group_id": None}
        config["enable_auto_commit"] = False
        partitions = await topic_partitions(self._settings.kafka_bootstrap, topic)
        consumer = AIOKafkaConsumer(**config)
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in partitions]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        self._task = asyncio.get_running_loop().create_task(self._read(consumer))

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            try:
                batch = await consumer.getmany(timeout_ms=1000)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reading DAG versions failed; retrying")
                await asyncio.sleep(1)
                continue
            for records in batch.values():
                for record in records:
                    try:
                        data = decode_record(record).data
                    except MalformedMessage as exc:
                        # Not ours to dead-letter: the DAG topic's own readers do that.
                        log.warning(
                            "skipping unreadable message on %s[%s]@%s: %s",
                            record.topic,
                            record.partition,
                            record.offset,
                            exc,
                        )
                        continue
                    if isinstance(data, DagVersionPublished):
                        self.add(data)

    async def stop(self) -> None:
        task, self._task = self._task, None
        consumer, self._consumer = self._consumer, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        if consumer is not None:
            await consumer.stop()
