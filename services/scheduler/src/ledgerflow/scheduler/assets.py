"""Asset events across partitions (ADR 0013), the scheduler's side.

Every scheduler instance reads the whole ``<prefix>.assets`` topic (one partition, no
consumer group), replayed from the beginning at start, into an
:class:`~ledgerflow.common.core.assets.AssetBook`. The scheduler:

- publishes the ``AssetEventEmitted`` facts of a success it folds for a DAG it owns
  (deterministic ids; after a replay it re-publishes only those the book lacks);
- after each batch, for the asset-scheduled DAGs it owns, asks the core whether a run
  is due (:func:`~ledgerflow.common.core.assets.due_asset_run`) and decides it as a
  ``TriggerDagRun`` whose id follows from the run, so two instances agree;
- puts the run's triggering events and the task's inlet events into work items.

The reader only records events and raises a flag; the deciding happens in the
scheduler's own loop, so the run log of a DAG is written in one order.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from ledgerflow.common.core.assets import (
    AssetBook,
    due_asset_run,
    emitted_for_success,
    is_asset_scheduled,
)
from ledgerflow.common.core.state import DagState
from ledgerflow.common.core.topology import topology
from ledgerflow.common.events import (
    Envelope,
    MalformedMessage,
    RunTaskAttempt,
    TaskAttemptSucceeded,
    decode,
)
from ledgerflow.common.kafka_io import EventProducer, background_consumer_config, stop_reader
from ledgerflow.common.settings import Settings

log = logging.getLogger(__name__)

INLET_EVENTS_LIMIT = 50


class AssetFeed:
    """``start()`` replays the assets topic and keeps reading it; ``stop()`` ends it."""

    def __init__(self, settings: Settings, producer: EventProducer) -> None:
        self.settings = settings
        self.producer = producer
        self.book = AssetBook()
        self.changed = True  # evaluate everything once after start
        self.dirty: set[str] = set()
        self._replayed: list[Envelope] = []
        self._sent: set[str] = set()  # asset event ids this instance sent
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ reading
    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            **{**background_consumer_config(self.settings), "group_id": None}
        )
        await consumer.start()
        tp = TopicPartition(self.settings.topics.assets, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        self._consumer = consumer
        end = (await consumer.end_offsets([tp]))[tp]
        while await consumer.position(tp) < end:
            self._fold(await consumer.getmany(tp, timeout_ms=1000))
        log.info("asset feed replayed %d asset events", len(self.book.events))
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        task, self._task = self._task, None
        consumer, self._consumer = self._consumer, None
        await stop_reader(task, consumer)

    def _fold(self, batch: dict[Any, list[Any]]) -> int:
        n = 0
        for records in batch.values():
            for record in records:
                try:
                    env = decode(record.value)
                except MalformedMessage:
                    continue  # the projector dead-letters it
                if self.book.add(record.offset, env) is not None:
                    n += 1
        if n:
            self.changed = True
        return n

    async def _loop(self) -> None:
        assert self._consumer is not None
        while True:
            try:
                self._fold(await self._consumer.getmany(timeout_ms=1000))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reading asset events failed; retrying in 1 s")
                await asyncio.sleep(1.0)

    # ------------------------------------------------------------------ producing
    async def publish_for(
        self, state: DagState, report: Envelope, futures: list[asyncio.Future[Any]]
    ) -> None:
        """Publish the asset events of a success report just folded into ``state``."""
        for env in emitted_for_success(state, report):
            await self._send(env, futures)

    def note_replayed(self, state: DagState, report: Envelope) -> None:
        """During recovery: remember the events a replayed success should have published."""
        if isinstance(report.data, TaskAttemptSucceeded) and report.data.asset_events:
            self._replayed.extend(emitted_for_success(state, report))

    async def publish_replayed(self, futures: list[asyncio.Future[Any]]) -> None:
        """After recovery: publish those the topic does not hold (a crash between the
        fold and the write); the ones it holds are in the book already."""
        pending, self._replayed = self._replayed, []
        for env in pending:
            if env.id not in self.book and env.id not in self._sent:
                log.info("publishing asset event %s (not found on the assets topic)", env.id)
                await self._send(env, futures)

    async def _send(self, env: Envelope, futures: list[asyncio.Future[Any]]) -> None:
        """Send once per instance: a second recovery (partitions assigned twice at
        start) may replay the same success before the feed has read the first copy
        back. Copies from other instances are harmless (readers drop a known id)."""
        if env.id in self._sent:
            return
        self._sent.add(env.id)
        futures.append(await self.producer.send_soon(self.settings.topics.assets, env))

    # ------------------------------------------------------------------ consuming
    def due(
        self, dag_ids: list[str], states: dict[str, DagState], catalog: Any, *, now: datetime
    ) -> list[tuple[str, Envelope]]:
        """The trigger commands due for these DAGs (the caller decides them)."""
        first_seen: dict[str, datetime] = getattr(catalog, "first_seen", {})
        out: list[tuple[str, Envelope]] = []
        for dag_id in dag_ids:
            version = catalog.latest_version_id(dag_id)
            dag = catalog.get(version) if version else None
            state = states.get(dag_id)
            if state is None or not is_asset_scheduled(dag):
                continue
            assert dag is not None
            due = due_asset_run(dag, state, self.book, since=first_seen.get(dag_id))
            if due is not None:
                log.info("asset-triggered run %s of %s is due", due.run_id, dag_id)
                out.append((dag_id, due.command(now=now)))
        return out

    def enrich(self, env: Envelope, states: dict[str, DagState], catalog: Any) -> Envelope:
        """A work item with the run's triggering events and the task's inlet events."""
        w = env.data
        if not isinstance(w, RunTaskAttempt):
            return env
        state = states.get(w.dag_id)
        run = state.runs.get(w.run_id) if state is not None else None
        update: dict[str, Any] = {}
        if run is not None and run.triggering_asset_events:
            update["triggering_asset_events"] = tuple(dict(e) for e in run.triggering_asset_events)
        dag = catalog.get(w.version_id)
        task = topology(dag).tasks.get(w.task_id) if dag is not None else None
        inlets = task.inlets if task is not None else ()
        if inlets:
            update["inlet_events"] = {
                ref.name: tuple(b.as_dict() for b in self.book.latest(ref.name, INLET_EVENTS_LIMIT))
                for ref in inlets
                if ref.kind == "asset"
            }
        if not update:
            return env
        return env.model_copy(update={"data": w.model_copy(update=update)})


__all__ = ["AssetFeed"]
