"""The scheduler service: read, decide with the pure core, write.

- One consumer group, ``ledgerflow-scheduler``, subscribed to the command topic and the
  run log, which are co-partitioned by ``dag_id`` and assigned with the range assignor:
  whoever owns partition *p* owns every DAG on it. Failover is a rebalance.
- On assignment the scheduler rebuilds the state of its new partitions by replaying the
  run log from the beginning (no snapshot yet), then *reconciles*: decides on the
  replayed state (level-triggered, so what is due comes out with the same deterministic
  ids the crashed owner would have used) and re-sends only the work items the work topic
  does not already hold (docs/adr/0003).
- Live: a command or an executor report is folded and decided at once; the decided
  events and work items are sent without linger, and the command offsets are committed
  only after the broker acked everything they caused.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]
from aiokafka.abc import ConsumerRebalanceListener  # type: ignore[import-untyped]
from aiokafka.coordinator.assignors.range import RangePartitionAssignor  # type: ignore[import-untyped]
from ledgerflow.common.core import (
    SCHEDULER_SOURCE,
    DagState,
    Decision,
    Tick,
    decide,
    empty,
    evolve,
    queued_work,
)
from ledgerflow.common.dag_versions import DagVersionCache
from ledgerflow.common.events import (
    Envelope,
    MalformedMessage,
    RunTaskAttempt,
    SetDagPaused,
    TriggerDagRun,
    decode,
)
from ledgerflow.common.kafka_io import EventProducer, consumer_config, ensure_topics
from ledgerflow.common.settings import Settings
from ledgerflow.common.topics import attempt_key
from ledgerflow.scheduler.work_ledger import WorkLedger, partition_for

log = logging.getLogger(__name__)

GROUP_ID = "ledgerflow-scheduler"
UNKNOWN_DAG_WAIT_SECONDS = 5.0


def _now() -> datetime:
    return datetime.now(UTC)


class Scheduler:
    """Holds the state of the DAGs on the partitions this instance owns."""

    def __init__(
        self, settings: Settings, catalog: DagVersionCache, producer: EventProducer
    ) -> None:
        self.settings = settings
        self.topics = settings.topics
        self.catalog = catalog
        self.producer = producer
        self.states: dict[str, DagState] = {}
        self.partition_of: dict[str, int] = {}
        self.owned: set[int] = set()
        self.wake_at: dict[str, datetime] = {}
        self._queues_ready: set[str] = set()
        self.consumer: AIOKafkaConsumer | None = None

    # ------------------------------------------------------------------ state
    def _state(self, dag_id: str) -> DagState:
        st = self.states.get(dag_id)
        if st is None:
            st = self.states[dag_id] = empty(dag_id)
        return st

    async def _decide(self, dag_id: str, inbound: Envelope | Tick) -> Decision:
        decision = decide(self._state(dag_id), inbound, now=_now(), catalog=self.catalog)
        self.states[dag_id] = decision.state
        if decision.wake_at is not None:
            self.wake_at[dag_id] = decision.wake_at
        else:
            self.wake_at.pop(dag_id, None)
        return decision

    # ------------------------------------------------------------------ writing
    async def _ensure_queue(self, queue: str) -> None:
        if queue not in self._queues_ready:
            await ensure_topics(self.settings, queues=[queue])
            self._queues_ready.add(queue)

    async def _send(
        self,
        decision: Decision,
        futures: list[asyncio.Future[Any]],
        *,
        skip_work: set[str] | None = None,
    ) -> None:
        for env in decision.events:
            futures.append(await self.producer.send_soon(self.topics.runs, env))
        for env in decision.work:
            if skip_work and env.id in skip_work:
                continue
            await self._send_work(env, futures)

    async def _send_work(self, env: Envelope, futures: list[asyncio.Future[Any]]) -> None:
        w = env.data
        assert isinstance(w, RunTaskAttempt)
        await self._ensure_queue(w.queue)
        key = attempt_key(w.dag_id, w.run_id, w.task_id, w.map_index, w.try_number)
        futures.append(await self.producer.send_soon(self.topics.work(w.queue), env, key=key))

    # ------------------------------------------------------------------ recovery
    async def recover(self, partitions: list[int]) -> dict[int, int]:
        """Rebuild the state of ``partitions`` from the run log; returns their end offsets."""
        ends: dict[int, int] = {}
        replay = AIOKafkaConsumer(**consumer_config(self.settings))
        await replay.start()
        try:
            tps = [TopicPartition(self.topics.runs, p) for p in partitions]
            replay.assign(tps)
            await replay.seek_to_beginning(*tps)
            end_offsets = await replay.end_offsets(tps)
            remaining = {tp for tp in tps if end_offsets[tp] > 0}
            count = 0
            while remaining:
                batch = await replay.getmany(*remaining, timeout_ms=1000)
                for tp, records in batch.items():
                    for record in records:
                        if record.offset >= end_offsets[tp]:
                            break
                        try:
                            env = decode(record.value)
                        except MalformedMessage:
                            continue  # dead-lettered by whoever read it live
                        dag_id = env.aggregate_key
                        self.partition_of[dag_id] = tp.partition
                        self.states[dag_id] = evolve(self._state(dag_id), env)
                        count += 1
                    if await replay.position(tp) >= end_offsets[tp]:
                        remaining.discard(tp)
            ends = {tp.partition: end_offsets[tp] for tp in tps}
            log.info("replayed %d run-log events for partitions %s", count, partitions)
        finally:
            await replay.stop()
        return ends

    async def reconcile(self, partitions: set[int]) -> None:
        """Decide on the replayed state and send what is due and was not sent yet."""
        dags = [d for d, p in self.partition_of.items() if p in partitions]
        futures: list[asyncio.Future[Any]] = []
        candidates: list[tuple[Decision | None, Envelope]] = []
        decisions: list[Decision] = []
        for dag_id in dags:
            pending = queued_work(self._state(dag_id), now=_now(), catalog=self.catalog)
            decision = await self._decide(dag_id, Tick(dag_id))
            decisions.append(decision)
            candidates += [(None, w) for w in pending] + [(decision, w) for w in decision.work]
        already = await self._already_sent([w for _, w in candidates])
        for decision in decisions:
            await self._send(decision, futures, skip_work=already)
        for origin, w in candidates:
            if origin is None and w.id not in already:
                log.info("re-sending work item %s (not found on its topic)", w.id)
                await self._send_work(w, futures)
        await asyncio.gather(*futures)

    async def _already_sent(self, items: list[Envelope]) -> set[str]:
        if not items:
            return set()
        since: dict[tuple[str, int], datetime] = {}
        for env in items:
            w = env.data
            assert isinstance(w, RunTaskAttempt)
            await self._ensure_queue(w.queue)
            key = attempt_key(w.dag_id, w.run_id, w.task_id, w.map_index, w.try_number)
            where = (self.topics.work(w.queue), partition_for(key, self.settings.work_partitions))
            run = self.states[w.dag_id].runs.get(w.run_id)
            t = run.queued_at if run else env.time
            since[where] = min(since.get(where, t), t)
        found: set[str] = set()
        async with WorkLedger(self.settings) as ledger:
            for (topic, partition), t in since.items():
                found |= await ledger.sent_ids(topic, partition, t)
        return found

    def forget(self, partitions: set[int]) -> None:
        for dag_id in [d for d, p in self.partition_of.items() if p in partitions]:
            self.states.pop(dag_id, None)
            self.wake_at.pop(dag_id, None)
            self.partition_of.pop(dag_id, None)
        self.owned -= partitions

    # ------------------------------------------------------------------ live
    async def handle_batch(self, batch: dict[TopicPartition, list[Any]]) -> None:
        futures: list[asyncio.Future[Any]] = []
        commits: dict[TopicPartition, int] = {}
        for tp, records in batch.items():
            if tp.partition not in self.owned:
                continue
            for record in records:
                await self._handle(tp, record, futures)
                commits[tp] = record.offset + 1
        await self._tick_due(futures)
        if futures:
            await asyncio.gather(*futures)
        if commits and self.consumer is not None:
            await self.consumer.commit(commits)

    async def _handle(
        self, tp: TopicPartition, record: Any, futures: list[asyncio.Future[Any]]
    ) -> None:
        try:
            env = decode(record.value)
        except MalformedMessage as exc:
            await self.producer.dead_letter(record, str(exc), consumer=GROUP_ID)
            return
        dag_id = env.aggregate_key
        self.partition_of[dag_id] = tp.partition
        if tp.topic == self.topics.runs:
            if env.source == SCHEDULER_SOURCE:
                # Our own decision coming back (already folded), or another instance's
                # during a handover: fold only; folding is idempotent.
                self.states[dag_id] = evolve(self._state(dag_id), env)
                return
        elif not isinstance(env.data, TriggerDagRun | SetDagPaused):
            await self.producer.dead_letter(
                record, f"{env.data.type} is not a command", consumer=GROUP_ID
            )
            return
        if isinstance(env.data, TriggerDagRun) and self.catalog.latest_version_id(dag_id) is None:
            await self.catalog.wait_for_dag(dag_id, UNKNOWN_DAG_WAIT_SECONDS)
        await self._send(await self._decide(dag_id, env), futures)

    async def _tick_due(self, futures: list[asyncio.Future[Any]]) -> None:
        now = _now()
        for dag_id, at in list(self.wake_at.items()):
            if at <= now and dag_id in self.states:
                await self._send(await self._decide(dag_id, Tick(dag_id)), futures)

    def next_wake_ms(self, cap_ms: int = 1000) -> int:
        if not self.wake_at:
            return cap_ms
        delta = (min(self.wake_at.values()) - _now()).total_seconds() * 1000
        return int(max(0, min(cap_ms, delta)))


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, scheduler: Scheduler) -> None:
        self.s = scheduler

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        lost = {tp.partition for tp in revoked if tp.topic == self.s.topics.runs}
        if lost:
            await self.s.producer.flush()
            self.s.forget(lost)
            log.info("released partitions %s", sorted(lost))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        consumer = self.s.consumer
        assert consumer is not None
        new = sorted(
            {tp.partition for tp in assigned if tp.topic == self.s.topics.runs} - self.s.owned
        )
        if not new:
            return
        ends = await self.s.recover(new)
        for p, end in ends.items():
            consumer.seek(TopicPartition(self.s.topics.runs, p), end)
        self.s.owned |= set(new)
        await self.s.reconcile(set(new))
        log.info("owning partitions %s", sorted(self.s.owned))


async def run(settings: Settings) -> None:
    """Run a scheduler instance until cancelled."""
    await ensure_topics(settings)
    instance = f"{socket.gethostname()}-{os.getpid()}"
    async with (
        DagVersionCache(settings) as cache,
        EventProducer(
            settings, source=SCHEDULER_SOURCE, client_id=f"scheduler-{instance}"
        ) as producer,
    ):
        await cache.wait_caught_up()
        scheduler = Scheduler(settings, cache, producer)
        consumer = AIOKafkaConsumer(
            group_id=GROUP_ID,
            client_id=f"scheduler-{instance}",
            partition_assignment_strategy=(RangePartitionAssignor,),
            session_timeout_ms=6000,
            heartbeat_interval_ms=1000,
            max_poll_interval_ms=300_000,
            **consumer_config(settings),
        )
        scheduler.consumer = consumer
        consumer.subscribe(
            [settings.topics.commands, settings.topics.runs], listener=_Rebalance(scheduler)
        )
        await consumer.start()
        log.info("scheduler %s started", instance)
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=scheduler.next_wake_ms())
                await scheduler.handle_batch(batch)
        finally:
            await consumer.stop()
            log.info("scheduler %s stopped", instance)


__all__ = ["Scheduler", "run", "GROUP_ID"]
