"""Kafka asset watchers (ADR 0014), the scheduler's side.

For every DAG this instance owns whose latest version is scheduled on an asset with
watchers, one reader per (DAG, asset, watcher) consumes the watcher's topics with
manual partition assignment (no consumer group: the position comes from the run log,
not from committed offsets). Each message is parsed (``value_format``), filtered
(:mod:`ledgerflow.common.core.message_filter`), checked against the DAG's pause state
(:func:`~ledgerflow.common.core.messages.accepts`) and, if it matches, recorded as an
``ExternalMessageReceived`` fact on the run log with an id from its position. The
scheduler reads the fact back like an executor report and the pure core creates the
run, so a message makes exactly one run across restarts and rebalances.

Where a reader starts, per partition: after the last message recorded in the log for
that (asset, watcher, topic, partition); for a watcher that never recorded one, at the
offsets for the time the first DAG version with this watcher was published
(``offsets_for_times``), so messages produced between the submission and the start of
the watcher are not lost. A JSON watcher dead-letters a message that is not JSON (with
the reason) and goes on. The readers never run DAG code.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from ledgerflow.common.core.message_filter import MessageFilter, compile_filter, message_env
from ledgerflow.common.core.messages import (
    accepts,
    dag_watchers,
    message_fact,
    resume_offset,
)
from ledgerflow.common.core.state import empty
from ledgerflow.common.dagmodel import AssetRef, WatcherSpec
from ledgerflow.common.events import ExternalMessageReceived
from ledgerflow.common.kafka_io import consumer_config
from ledgerflow.scheduler.work_ledger import partition_for

if TYPE_CHECKING:
    from ledgerflow.scheduler.service import Scheduler

log = logging.getLogger(__name__)

CONSUMER = "ledgerflow-scheduler-watcher"  # in dead-letter headers
MAX_VALUE_BYTES = 256 * 1024  # larger values are not copied into the run log
TOPIC_REFRESH_SECONDS = 10.0


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def decode_value(raw: bytes | None, value_format: str) -> tuple[Any, Any]:
    """``(what the filter sees, what goes into conf)`` for a message value. JSON that
    does not parse (also NaN/Infinity, which JSON does not have, and nesting too deep
    for the parser) raises ``ValueError``: the caller dead-letters the message."""
    if raw is None:  # a tombstone
        return None, None
    if value_format == "json":
        try:
            parsed = json.loads(raw, parse_constant=_no_constant)
        except RecursionError:
            raise ValueError("nested too deeply") from None
        return parsed, parsed
    if value_format == "text":
        text = raw.decode("utf-8", "replace")
        return text, text
    return raw, base64.b64encode(raw).decode()


@dataclass(frozen=True)
class WatchId:
    dag_id: str
    asset: str
    watcher: str
    spec_json: str  # a changed spec (topics, filter...) restarts the reader


def _same_cluster(spec: WatcherSpec, bootstrap: str) -> bool:
    if spec.bootstrap_servers is None:
        return True
    wanted = {s.strip() for s in spec.bootstrap_servers.split(",") if s.strip()}
    ours = {s.strip() for s in bootstrap.split(",") if s.strip()}
    return wanted == ours


class WatcherRuntime:
    """Starts and stops the readers as ownership and DAG versions change."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.s = scheduler
        self.settings = scheduler.settings
        self.tasks: dict[WatchId, asyncio.Task[None]] = {}
        self.changed = True
        scheduler.catalog.on_change(lambda _ids: self._mark_changed())

    def _mark_changed(self) -> None:
        self.changed = True

    # ------------------------------------------------------------------ lifecycle
    def sync(self) -> None:
        """Make the running readers match the watchers of the DAGs owned now (cheap
        when nothing changed: called after every batch)."""
        if not self.changed:
            return
        self.changed = False
        catalog = self.s.catalog
        wanted: dict[WatchId, tuple[AssetRef, WatcherSpec]] = {}
        for dag_id in catalog.dag_ids():
            if dag_id in getattr(catalog, "deleted", ()):
                continue
            if partition_for(dag_id, self.settings.partitions) not in self.s.owned:
                continue
            version = catalog.latest_version_id(dag_id)
            dag = catalog.get(version) if version else None
            for ref, spec in dag_watchers(dag):
                wid = WatchId(dag_id, ref.name, spec.name, spec.model_dump_json())
                wanted[wid] = (ref, spec)
        for wid in [w for w in self.tasks if w not in wanted]:
            self.tasks.pop(wid).cancel()
            log.info("stopped watcher %s of %s/%s", wid.watcher, wid.dag_id, wid.asset)
        loop = asyncio.get_running_loop()
        for wid, (ref, spec) in wanted.items():
            task = self.tasks.get(wid)
            if task is None or task.done():
                self.tasks[wid] = loop.create_task(
                    self._watch(wid, ref, spec), name=f"watcher-{wid.dag_id}-{wid.watcher}"
                )

    async def release(self, partitions: set[int]) -> None:
        """Stop the readers of DAGs on ``partitions`` (revoked): before the producer is
        flushed, so no fact is written after the new owner replayed."""
        gone = [
            w for w in self.tasks if partition_for(w.dag_id, self.settings.partitions) in partitions
        ]
        tasks = [self.tasks.pop(w) for w in gone]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.changed = True

    async def stop(self) -> None:
        tasks = list(self.tasks.values())
        self.tasks.clear()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ------------------------------------------------------------------ one reader
    def _consumer_kwargs(self, spec: WatcherSpec) -> dict[str, Any]:
        if _same_cluster(spec, self.settings.kafka_bootstrap):
            base = consumer_config(self.settings)  # with the deployment's security
        else:
            base = {
                "bootstrap_servers": spec.bootstrap_servers,
                "fetch_max_wait_ms": 100,
                "enable_auto_commit": False,
                "auto_offset_reset": "earliest",
                "metadata_max_age_ms": 5_000,
                **spec.consumer_config,
            }
        return {**base, "group_id": None, "enable_auto_commit": False}

    async def _watch(self, wid: WatchId, ref: AssetRef, spec: WatcherSpec) -> None:
        while True:
            try:
                await self._read(wid, ref, spec)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("watcher %s of %s failed; restarting in 2 s", wid.watcher, wid.dag_id)
                await asyncio.sleep(2.0)

    async def _read(self, wid: WatchId, ref: AssetRef, spec: WatcherSpec) -> None:
        flt = compile_filter(spec.filter) if spec.filter else None
        consumer = AIOKafkaConsumer(**self._consumer_kwargs(spec))
        await consumer.start()
        try:
            assigned: set[TopicPartition] = set()
            refreshed = 0.0
            loop = asyncio.get_running_loop()
            while True:
                if loop.time() - refreshed >= TOPIC_REFRESH_SECONDS or not assigned:
                    assigned = await self._assign(consumer, wid, spec, assigned)
                    refreshed = loop.time()
                    if not assigned:
                        await asyncio.sleep(1.0)
                        continue
                batch = await consumer.getmany(timeout_ms=1000)
                futures: list[asyncio.Future[Any]] = []
                for records in batch.values():
                    for record in records:
                        await self._on_record(wid, ref, spec, flt, record, futures)
                if futures:
                    await asyncio.gather(*futures)
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()

    async def _assign(
        self,
        consumer: AIOKafkaConsumer,
        wid: WatchId,
        spec: WatcherSpec,
        assigned: set[TopicPartition],
    ) -> set[TopicPartition]:
        """Assign every partition of the watched topics (new topics or partitions are
        picked up on the next refresh); new partitions start where :meth:`_start` says."""
        with contextlib.suppress(Exception):
            await consumer._client.force_metadata_update()  # noqa: SLF001 - no public call
        tps: set[TopicPartition] = set()
        for topic in spec.topics:
            parts = consumer.partitions_for_topic(topic)
            if not parts:
                log.debug("watched topic %s does not exist (yet)", topic)
                continue
            tps |= {TopicPartition(topic, p) for p in parts}
        new = tps - assigned
        if not new:
            return assigned
        kept = {tp: await consumer.position(tp) for tp in assigned}
        consumer.assign(sorted(tps))
        for tp, pos in kept.items():
            consumer.seek(tp, pos)
        await self._start(consumer, wid, sorted(new))
        return tps

    async def _start(
        self, consumer: AIOKafkaConsumer, wid: WatchId, tps: list[TopicPartition]
    ) -> None:
        state = self.s.states.get(wid.dag_id)
        since = self._since(wid)
        fresh: list[TopicPartition] = []
        for tp in tps:
            resume = (
                resume_offset(state, wid.asset, wid.watcher, tp.topic, tp.partition)
                if state is not None
                else None
            )
            if resume is not None:
                consumer.seek(tp, resume)
            else:
                fresh.append(tp)
        if not fresh:
            return
        ms = int(since.timestamp() * 1000)
        # The ends first: a partition with no message at or after ``since`` yet is read
        # from where it ended before the time lookup, so a message appended between the
        # two lookups is read, not skipped.
        ends = await consumer.end_offsets(fresh)
        found = await consumer.offsets_for_times(dict.fromkeys(fresh, ms))
        for tp in fresh:
            hit = found.get(tp)
            consumer.seek(tp, hit.offset if hit is not None else ends[tp])
        log.info(
            "watcher %s of %s starts %s from %s", wid.watcher, wid.dag_id, fresh, since.isoformat()
        )

    def _since(self, wid: WatchId) -> datetime:
        """When the first version of the DAG with this watcher (same topics) was
        published; the DAG's first publication if that is unknown."""
        catalog = self.s.catalog
        seen: dict[str, datetime] = getattr(catalog, "version_seen", {})
        spec_topics = json.loads(wid.spec_json).get("topics")
        best: datetime | None = None
        for version_id, at in seen.items():
            dag = catalog.get(version_id)
            if dag is None or dag.dag_id != wid.dag_id:
                continue
            for ref, spec in dag_watchers(dag):
                if (ref.name, spec.name) == (wid.asset, wid.watcher) and list(spec.topics) == list(
                    spec_topics or ()
                ):
                    if best is None or at < best:
                        best = at
        if best is None:
            first: dict[str, datetime] = getattr(catalog, "first_seen", {})
            best = first.get(wid.dag_id, datetime.now(UTC))
        return best

    async def _on_record(
        self,
        wid: WatchId,
        ref: AssetRef,
        spec: WatcherSpec,
        flt: MessageFilter | None,
        record: Any,
        futures: list[asyncio.Future[Any]],
    ) -> None:
        raw: bytes | None = record.value
        headers = {
            str(k): v.decode("utf-8", "replace") if isinstance(v, bytes) else ""
            for k, v in (record.headers or ())
        }
        key = record.key.decode("utf-8", "replace") if record.key is not None else None
        try:
            value, conf_value = decode_value(raw, spec.value_format)
        except ValueError as e:
            log.warning(
                "watcher %s of %s: %s[%s]@%s is not JSON; dead-lettered",
                wid.watcher,
                wid.dag_id,
                record.topic,
                record.partition,
                record.offset,
            )
            await self.s.producer.dead_letter(
                record,
                f"watcher {wid.watcher} of {wid.dag_id}: value is not JSON: {e}",
                consumer=CONSUMER,
            )
            return
        timestamp = record.timestamp if isinstance(record.timestamp, int) else None
        env = message_env(
            key=key,
            value=value,
            headers=headers,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            timestamp=timestamp,
        )
        if flt is not None and not flt.matches(env):
            return
        state = self.s.states.get(wid.dag_id) or empty(wid.dag_id)
        catalog = self.s.catalog
        version = catalog.latest_version_id(wid.dag_id)
        dag = catalog.get(version) if version else None
        if not accepts(state, dag, timestamp):
            log.info(
                "watcher %s of %s: DAG paused, dropping %s[%s]@%s",
                wid.watcher,
                wid.dag_id,
                record.topic,
                record.partition,
                record.offset,
            )
            return
        omitted = raw is not None and len(raw) > MAX_VALUE_BYTES
        data = ExternalMessageReceived(
            dag_id=wid.dag_id,
            asset=wid.asset,
            watcher=wid.watcher,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=key,
            value=None if omitted else conf_value,
            value_format=spec.value_format,
            value_omitted=omitted,
            headers=headers,
            timestamp_ms=timestamp,
        )
        fact = message_fact(data, now=datetime.now(UTC))
        futures.append(await self.s.producer.send_soon(self.settings.topics.runs, fact))
        log.info(
            "watcher %s of %s: %s[%s]@%s matched",
            wid.watcher,
            wid.dag_id,
            record.topic,
            record.partition,
            record.offset,
        )


__all__ = ["WatcherRuntime", "WatchId"]
