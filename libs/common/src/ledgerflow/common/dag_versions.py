"""An in-memory catalog of DAG versions, fed by the DAG topic (an adapter).

Reads ``<prefix>.dags`` from the beginning, on every partition, without a consumer group,
and keeps every ``DagVersionPublished``. The scheduler uses it as the core's
:class:`~ledgerflow.common.core.Catalog`; the executor uses it to find a task's source.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]
from ledgerflow.common.dagmodel import SerializedDag
from ledgerflow.common.events import DagDeleted, DagVersionPublished, MalformedMessage, decode
from ledgerflow.common.kafka_io import background_consumer_config, stop_reader
from ledgerflow.common.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")


class DagVersionCache:
    """``async with DagVersionCache(settings) as cache``; then ``cache.get(version_id)``."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._versions: dict[str, DagVersionPublished] = {}
        self._latest: dict[str, str] = {}
        # When each DAG's first version was published (asset events older than that do
        # not trigger it, ADR 0013).
        self.first_seen: dict[str, datetime] = {}
        # When each version was first published (a new Kafka watcher starts reading its
        # topics from then, ADR 0014).
        self.version_seen: dict[str, datetime] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()
        self._positions: dict[TopicPartition, int] = {}
        self._start_ends: dict[TopicPartition, int] = {}
        # Issue 6: DAGs deleted since their latest version, and who to tell when a DAG's
        # latest version changes or it is deleted (the scheduler ticks its schedule).
        self.deleted: set[str] = set()
        self._listeners: list[Callable[[set[str]], None]] = []

    async def start(self) -> None:
        if self._consumer is not None:
            return
        cfg = background_consumer_config(self._settings)
        consumer = AIOKafkaConsumer(**cfg)
        await consumer.start()
        topic = self._settings.topics.dags
        parts = consumer.partitions_for_topic(topic)
        for _ in range(100):
            if parts:
                break
            await asyncio.sleep(0.05)
            await consumer._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public call
            parts = consumer.partitions_for_topic(topic)
        if not parts:
            await consumer.stop()
            raise RuntimeError(f"topic {topic} does not exist (run ensure_topics first)")
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        self._start_ends = {
            tp: off for tp, off in (await consumer.end_offsets(tps)).items() if off > 0
        }
        self._consumer = consumer
        self._task = asyncio.create_task(self._run(), name="dag-version-cache")

    async def stop(self) -> None:
        task, self._task = self._task, None
        consumer, self._consumer = self._consumer, None
        await stop_reader(task, consumer)

    async def __aenter__(self) -> DagVersionCache:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            try:
                batch = await self._consumer.getmany(timeout_ms=1000)
            except asyncio.CancelledError:
                raise
            except Exception:  # a broker hiccup must not end the reader for good
                log.exception("reading DAG versions failed; retrying in 1 s")
                await asyncio.sleep(1.0)
                continue
            touched: set[str] = set()
            for tp, records in batch.items():
                for record in records:
                    try:
                        env = decode(record.value)
                    except MalformedMessage as exc:
                        log.warning(
                            "skipping malformed DAG-version message at %s: %s", record.offset, exc
                        )
                        continue
                    if isinstance(env.data, DagVersionPublished):
                        dag_id = env.data.dag_id
                        if self._latest.get(dag_id) != env.data.version_id or (
                            dag_id in self.deleted
                        ):
                            touched.add(dag_id)
                        self.add(env.data)
                        self.first_seen.setdefault(env.data.dag_id, env.time)
                        self.version_seen.setdefault(env.data.version_id, env.time)
                    elif isinstance(env.data, DagDeleted):
                        self.deleted.add(env.data.dag_id)
                        touched.add(env.data.dag_id)
                    self._positions[tp] = record.offset + 1
            if touched:
                for listener in self._listeners:
                    listener(touched)
            async with self._changed:
                self._changed.notify_all()

    def add(self, version: DagVersionPublished) -> None:
        """Record a version (also used by tests and by callers who just published one)."""
        if version.version_id not in self._versions:
            self._versions[version.version_id] = version
        self._latest[version.dag_id] = version.version_id
        self.deleted.discard(version.dag_id)

    def on_change(self, listener: Callable[[set[str]], None]) -> None:
        """Call ``listener(dag_ids)`` (synchronously, from the reader task) whenever the
        latest version of some DAGs changed or they were deleted."""
        self._listeners.append(listener)

    # -- Catalog protocol (read-only, synchronous) ---------------------------------
    def get(self, version_id: str) -> SerializedDag | None:
        v = self._versions.get(version_id)
        return v.dag if v else None

    def latest_version_id(self, dag_id: str) -> str | None:
        return self._latest.get(dag_id)

    def dag_ids(self) -> list[str]:
        """Every DAG with a version."""
        return list(self._latest)

    def version(self, version_id: str) -> DagVersionPublished | None:
        """The full published version, with its source code."""
        return self._versions.get(version_id)

    # -- waiting ------------------------------------------------------------------
    async def wait_caught_up(self, timeout: float = 60.0) -> bool:
        """Wait until every version published before :meth:`start` has been read."""

        def done() -> bool | None:
            ok = all(self._positions.get(tp, 0) >= end for tp, end in self._start_ends.items())
            return True if ok else None

        return bool(await self._wait(done, timeout))

    async def wait_for(self, version_id: str, timeout: float) -> DagVersionPublished | None:
        """Wait until ``version_id`` is known, or ``timeout`` seconds pass."""
        return await self._wait(lambda: self._versions.get(version_id), timeout)

    async def wait_for_dag(self, dag_id: str, timeout: float) -> str | None:
        """Wait until some version of ``dag_id`` is known; returns its latest version id."""
        return await self._wait(lambda: self._latest.get(dag_id), timeout)

    async def _wait(self, probe: Callable[[], T | None], timeout: float) -> T | None:
        if (found := probe()) is not None:
            return found
        try:
            # asyncio.timeout, not wait_for: wait_for can swallow a cancellation on 3.11.
            async with asyncio.timeout(timeout), self._changed:
                while (found := probe()) is None:
                    await self._changed.wait()
                return found
        except TimeoutError:
            return None
