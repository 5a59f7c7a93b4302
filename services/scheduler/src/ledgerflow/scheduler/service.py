"""The scheduler service: read, decide with the pure core, write.

- One consumer group, ``ledgerflow-scheduler``, subscribed to the command topic and the
  run log, which are co-partitioned by ``dag_id`` and assigned with the range assignor:
  whoever owns partition *p* owns every DAG on it. Failover is a rebalance.
- On assignment the scheduler rebuilds the state of its new partitions by replaying the
  run log from the beginning (no snapshot yet), then *reconciles*: decides on the
  replayed state (level-triggered, so what is due comes out with the same deterministic
  ids the crashed owner would have used) and re-sends only the work items the work topic
  does not already hold (docs/adr/0003).
- Live: a command or an executor report is folded and decided at once (the core looks
  only at what the event can have changed); the decided events and work items are sent
  without linger, and the command offsets are committed only after the broker acked
  everything they caused. Timers (retries, reschedules, sensor timeouts, zombie
  deadlines) come from ``Decision.wake_at`` and fire a timers-only tick.
- Pools and concurrency limits (ADR 0011): instances are ``scheduled`` and queued once
  the pool arbiter grants them; the instance owning run-log partition 0 is the arbiter
  (:mod:`.arbiter`) and grants its own requests without a trip through Kafka.
- Cancels (``CancelTaskAttempt``, for cleared, marked and zombie attempts) go to the
  control topic only once the facts that decided them are acknowledged, so an
  executor's report of the killed attempt always finds the decision before it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]
from aiokafka.abc import ConsumerRebalanceListener  # type: ignore[import-untyped]
from aiokafka.coordinator.assignors.range import RangePartitionAssignor  # type: ignore[import-untyped]
from aiokafka.errors import CommitFailedError  # type: ignore[import-untyped]
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
from ledgerflow.common.core.backfill import BACKFILL_COMMANDS
from ledgerflow.common.core.cancels import OpenAttempts
from ledgerflow.common.dag_versions import DagVersionCache
from ledgerflow.common.events import (
    ClearTaskInstances,
    CreateBackfill,
    Envelope,
    MalformedMessage,
    RunTaskAttempt,
    SetDagPaused,
    SetDagRunState,
    SetTaskInstanceState,
    TaskAttemptSucceeded,
    TaskInstanceScheduled,
    TriggerDagRun,
    decode,
)
from ledgerflow.common.kafka_io import EventProducer, consumer_config, ensure_topics
from ledgerflow.common.liveness import start_beating
from ledgerflow.common.metrics import ConsumerLag, DecisionObserver
from ledgerflow.common.settings import Settings
from ledgerflow.common.telemetry import tracing_enabled
from ledgerflow.common.topics import attempt_key
from ledgerflow.scheduler.arbiter import PoolArbiter
from ledgerflow.scheduler.assets import AssetFeed
from ledgerflow.scheduler.tracing import (
    note_inbound,
    trace_decision,
    trace_replayed,
    untraced_from,
)
from ledgerflow.scheduler.watchers import WatcherRuntime
from ledgerflow.scheduler.work_ledger import WorkLedger, partition_for, work_partition

log = logging.getLogger(__name__)

GROUP_ID = "ledgerflow-scheduler"  # the consumer name in dead-letter headers


def group_id_for(settings: Settings) -> str:
    """The scheduler consumer group: one per topic prefix, so two deployments (or two
    tests) sharing a broker never rebalance each other (like the executors' groups)."""
    return f"{settings.topic_prefix}-scheduler"


UNKNOWN_DAG_WAIT_SECONDS = 5.0
COMMANDS = (
    TriggerDagRun,
    SetDagPaused,
    ClearTaskInstances,
    SetTaskInstanceState,
    SetDagRunState,
    *BACKFILL_COMMANDS,
)


def _now() -> datetime:
    return datetime.now(UTC)


class Scheduler:
    """Holds the state of the DAGs on the partitions this instance owns."""

    def __init__(
        self,
        settings: Settings,
        catalog: DagVersionCache,
        producer: EventProducer,
        *,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.settings = settings
        # The one clock of this instance (tests pass a fake one): the core's ``now``.
        self.clock = clock
        # DAGs whose latest version changed (or that were deleted) since the last batch:
        # their schedule is ticked even with no run-log event yet (issue 6). ``wakeup`` is
        # set to end the consume loop's wait at once.
        self._catalog_dirty: set[str] = set()
        self.wakeup = asyncio.Event()
        self.topics = settings.topics
        self.catalog = catalog
        self.producer = producer
        self.states: dict[str, DagState] = {}
        self.partition_of: dict[str, int] = {}
        self.owned: set[int] = set()
        self.wake_at: dict[str, datetime] = {}
        self._queues_ready: set[str] = set()
        self.consumer: AIOKafkaConsumer | None = None
        self.zombie_timeout = timedelta(seconds=settings.zombie_timeout_seconds)
        # Cancels decided in the current batch, sent once its events are acknowledged.
        self._control: list[Envelope] = []
        # Attempts queued and not ended in the partitions being recovered: their cancels
        # are re-sent by ``reconcile`` if the state has moved past them (core.cancels).
        self._open = OpenAttempts()
        # Set while this instance owns run-log partition 0 (ADR 0011).
        self.arbiter: PoolArbiter | None = None
        self._arbiter_task: asyncio.Task[None] | None = None
        self.observer = DecisionObserver()  # scheduling-delay and run-duration metrics
        # Asset events of every partition (ADR 0013); set by ``run``.
        self.assets: AssetFeed | None = None
        # Readers of external Kafka topics for asset watchers (ADR 0014); set by ``run``.
        self.watchers: WatcherRuntime | None = None

    # ------------------------------------------------------------------ state
    def _state(self, dag_id: str) -> DagState:
        st = self.states.get(dag_id)
        if st is None:
            st = self.states[dag_id] = empty(dag_id)
        return st

    async def _decide(self, dag_id: str, inbound: Envelope | Tick) -> Decision:
        before, now = self._state(dag_id), self.clock()
        decision = decide(
            before,
            inbound,
            now=now,
            catalog=self.catalog,
            zombie_timeout=self.zombie_timeout,
            pools=True,
        )
        self.states[dag_id] = decision.state
        self.observer.observe(inbound, decision, self.catalog, before)  # delay metrics
        if tracing_enabled():  # the run's and attempts' spans, written once they end
            trace_decision(before, inbound, decision, catalog=self.catalog, started=now)
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
            if self.arbiter is not None and isinstance(env.data, TaskInstanceScheduled):
                self.arbiter.offer(env)
        self._control.extend(decision.control)
        for env in decision.work:
            if skip_work and env.id in skip_work:
                continue
            await self._send_work(env, futures)

    # ------------------------------------------------------------------ pools
    def take_arbiter_role(self) -> None:
        """Start the pool arbiter in the background (it replays the whole run log, which
        must not hold up the rebalance); retried until it runs or the role is dropped."""
        if self._arbiter_task is None:
            self._arbiter_task = asyncio.get_running_loop().create_task(self._start_arbiter())

    async def _start_arbiter(self) -> None:
        while True:
            arbiter = PoolArbiter(self.settings, self.producer, on_grants=self.on_grants)
            try:
                await arbiter.start()
            except asyncio.CancelledError:
                await arbiter.stop()
                raise
            except Exception:
                log.exception("the pool arbiter could not start; retrying")
                await arbiter.stop()
                await asyncio.sleep(1.0)
                continue
            self.arbiter = arbiter
            log.info("this instance is the pool arbiter")
            return

    async def drop_arbiter_role(self) -> None:
        task, self._arbiter_task = self._arbiter_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        arbiter, self.arbiter = self.arbiter, None
        if arbiter is not None:
            await arbiter.stop()

    async def _grant_local(self, futures: list[asyncio.Future[Any]] | None = None) -> None:
        """As the arbiter, grant what this batch asked for now (see :meth:`on_grants`).

        With ``futures`` (a live batch's), the grants and the queueing of this instance's
        granted DAGs are sent at once, behind the batch's own facts on the same
        partitions, and acknowledged together with them (one round trip per batch, not
        three: facts, grants, queued): the caller waits for ``futures`` before it sends
        cancels or commits."""
        if self.arbiter is None:
            return
        if futures is None:
            await self.arbiter.grant()
            return
        for grant in self.arbiter.due_grants():
            futures.append(await self.producer.send_soon(self.topics.runs, grant))
            dag_id = grant.aggregate_key
            if self.partition_of.get(dag_id) in self.owned and dag_id in self.states:
                await self._send(await self._decide(dag_id, grant), futures)

    async def on_grants(self, grants: list[Envelope]) -> None:
        """Queue at once the granted instances of DAGs this instance owns (their grants
        coming back from the log are then repeats)."""
        futures: list[asyncio.Future[Any]] = []
        for grant in grants:
            dag_id = grant.aggregate_key
            if self.partition_of.get(dag_id) in self.owned and dag_id in self.states:
                await self._send(await self._decide(dag_id, grant), futures)
        await asyncio.gather(*futures)
        await self._flush_control()

    async def _flush_control(self) -> None:
        """Send the batch's cancels (their facts are acknowledged by now)."""
        control, self._control = self._control, []
        if control:
            await asyncio.gather(
                *[await self.producer.send_soon(self.topics.control, env) for env in control]
            )

    async def _send_work(self, env: Envelope, futures: list[asyncio.Future[Any]]) -> None:
        w = env.data
        assert isinstance(w, RunTaskAttempt)
        await self._ensure_queue(w.queue)
        if self.assets is not None:
            env = self.assets.enrich(env, self.states, self.catalog)
        key = attempt_key(w.dag_id, w.run_id, w.task_id, w.map_index, w.try_number)
        partition = await self._work_partition(w)
        futures.append(
            await self.producer.send_soon(
                self.topics.work(w.queue), env, key=key, partition=partition
            )
        )

    async def _work_partition(self, w: RunTaskAttempt) -> int:
        """The partition of ``w``'s work item, over the partitions its queue's topic has
        (the broker's metadata, cached by the producer; a topic made elsewhere may
        have another count than ``work_partitions``)."""
        count = len(await self.producer.raw.partitions_for(self.topics.work(w.queue)))
        return work_partition(w.dag_id, w.run_id, w.task_id, w.map_index, w.try_number, count)

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
            # Past the group's commit, reports were handled live by nobody: trace them.
            live_from = await untraced_from(self.consumer, tps) if tracing_enabled() else {}
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
                        before = self._state(dag_id)
                        self.states[dag_id] = evolve(before, env)
                        if record.offset >= live_from.get(tp, end_offsets[tp]):
                            trace_replayed(before, env, self.states[dag_id], catalog=self.catalog)
                        self._open.note(env)
                        if self.assets is not None:
                            self.assets.note_replayed(self.states[dag_id], env)
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
        # A scheduled DAG may have no run-log event yet: tick every DAG of the catalog
        # on these partitions too (deleted ones excepted).
        for dag_id in self._catalog_dags(partitions):
            if dag_id not in self.partition_of:
                self.partition_of[dag_id] = partition_for(dag_id, self.settings.partitions)
                dags.append(dag_id)
        futures: list[asyncio.Future[Any]] = []
        candidates: list[tuple[Decision | None, Envelope]] = []
        decisions: list[Decision] = []
        for dag_id in dags:
            pending = queued_work(self._state(dag_id), now=self.clock(), catalog=self.catalog)
            # A full tick: the replayed state carries no dirty set, so look at everything.
            decision = await self._decide(dag_id, Tick(dag_id, full=True))
            decisions.append(decision)
            # Cancels decided before a crash may never have been sent (ADR 0010).
            self._control.extend(self._open.due(decision.state, now=self.clock()))
            candidates += [(None, w) for w in pending] + [(decision, w) for w in decision.work]
        already = await self._already_sent([w for _, w in candidates])
        for decision in decisions:
            await self._send(decision, futures, skip_work=already)
        for origin, w in candidates:
            if origin is None and w.id not in already:
                log.info("re-sending work item %s (not found on its topic)", w.id)
                await self._send_work(w, futures)
        if self.assets is not None:
            await self.assets.publish_replayed(futures)
            self.assets.changed = True
        await asyncio.gather(*futures)
        await self._flush_control()
        self._open = OpenAttempts()  # only recovery needs it
        await self._grant_local()

    async def _already_sent(self, items: list[Envelope]) -> set[str]:
        if not items:
            return set()
        since: dict[tuple[str, int], datetime] = {}
        for env in items:
            w = env.data
            assert isinstance(w, RunTaskAttempt)
            await self._ensure_queue(w.queue)
            where = (self.topics.work(w.queue), await self._work_partition(w))
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
        await self._tick_catalog(futures)
        await self._tick_due(futures)
        await self._trigger_assets(futures)
        if self.watchers is not None:
            self.watchers.sync()  # readers for the watchers of the DAGs owned now
        await self._grant_local(futures)
        if futures:
            await asyncio.gather(*futures)
        await self._flush_control()
        if commits and self.consumer is not None:
            try:
                await self.consumer.commit(commits)
            except CommitFailedError:
                # The group is rebalancing (a member joined or died): whoever owns these
                # partitions next re-reads the records, and deciding them is idempotent.
                log.info("offsets not committed: the scheduler group is rebalancing")

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
        elif not isinstance(env.data, COMMANDS):
            await self.producer.dead_letter(
                record, f"{env.data.type} is not a command", consumer=GROUP_ID
            )
            return
        waits = isinstance(env.data, TriggerDagRun | CreateBackfill)
        if waits and self.catalog.latest_version_id(dag_id) is None:
            await self.catalog.wait_for_dag(dag_id, UNKNOWN_DAG_WAIT_SECONDS)
        if tracing_enabled():
            note_inbound(record)  # the decision's span links to the sender's span
        await self._send(await self._decide(dag_id, env), futures)
        if self.assets is not None:
            if isinstance(env.data, TaskAttemptSucceeded):
                await self.assets.publish_for(self.states[dag_id], env, futures)
            elif tp.topic != self.topics.runs:
                self.assets.dirty.add(dag_id)  # e.g. unpaused: events may be waiting

    async def _trigger_assets(self, futures: list[asyncio.Future[Any]]) -> None:
        """Create the asset-triggered runs due for the DAGs this instance owns (ADR 0013)."""
        feed = self.assets
        if feed is None or not (feed.changed or feed.dirty):
            return
        dag_ids = feed.dirty
        if feed.changed:  # every DAG known, also those with no run yet
            dag_ids = set(self.catalog.dag_ids())
        feed.changed, feed.dirty = False, set()
        mine = []
        for dag_id in sorted(dag_ids):
            p = partition_for(dag_id, self.settings.partitions)
            if p in self.owned:
                self.partition_of.setdefault(dag_id, p)
                self._state(dag_id)
                mine.append(dag_id)
        for dag_id, command in feed.due(mine, self.states, self.catalog, now=self.clock()):
            await self._send(await self._decide(dag_id, command), futures)

    def _catalog_dags(self, partitions: set[int]) -> list[str]:
        """The catalog's DAGs (not deleted) whose dag_id hashes to one of ``partitions``
        (murmur2, as the producer keys them)."""
        n = self.settings.partitions
        return sorted(
            d
            for d in self.catalog.dag_ids()
            if d not in self.catalog.deleted and partition_for(d, n) in partitions
        )

    def catalog_changed(self, dag_ids: set[str]) -> None:
        """``DagVersionCache.on_change`` listener: tick these DAGs' schedules soon."""
        self._catalog_dirty |= dag_ids
        self.wakeup.set()

    async def _tick_catalog(self, futures: list[asyncio.Future[Any]]) -> None:
        """Tick the owned DAGs whose latest version changed: a new schedule (or a new
        DAG) may have runs due, or a wake time that moved."""
        dirty, self._catalog_dirty = self._catalog_dirty, set()
        for dag_id in sorted(dirty):
            p = partition_for(dag_id, self.settings.partitions)
            if p in self.owned and dag_id not in self.catalog.deleted:
                self.partition_of.setdefault(dag_id, p)
                await self._send(await self._decide(dag_id, Tick(dag_id, full=False)), futures)

    async def _tick_due(self, futures: list[asyncio.Future[Any]]) -> None:
        # A timer tick looks only at the instances waiting on a timer (retries,
        # reschedules, sensor timeouts); everything else was decided when it changed.
        now = self.clock()
        for dag_id, at in list(self.wake_at.items()):
            if at <= now and dag_id in self.states:
                await self._send(await self._decide(dag_id, Tick(dag_id, full=False)), futures)

    def next_wake_ms(self, cap_ms: int = 1000) -> int:
        if not self.wake_at:
            return cap_ms
        delta = (min(self.wake_at.values()) - self.clock()).total_seconds() * 1000
        return int(max(0, min(cap_ms, delta)))


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, scheduler: Scheduler) -> None:
        self.s = scheduler

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        lost = {tp.partition for tp in revoked if tp.topic == self.s.topics.runs}
        if 0 in lost:
            await self.s.drop_arbiter_role()
        if lost and self.s.watchers is not None:
            await self.s.watchers.release(lost)  # no fact after the new owner replayed
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
        if self.s.watchers is not None:
            self.s.watchers.changed = True
        if 0 in new:
            self.s.take_arbiter_role()
        log.info("owning partitions %s", sorted(self.s.owned))


async def _consume(consumer: AIOKafkaConsumer, scheduler: Scheduler) -> None:
    """Handle a batch of records, a due timer or a catalog change, whichever comes first.
    A fetch in flight is kept for the next round, never cancelled (records stay in
    order); the scheduler is the only writer, so nothing decides concurrently."""
    fetch: asyncio.Future[Any] | None = None
    try:
        while True:
            if fetch is None:
                fetch = asyncio.ensure_future(consumer.getmany(timeout_ms=1000))
            wake = asyncio.ensure_future(scheduler.wakeup.wait())
            try:
                await asyncio.wait(
                    {fetch, wake},
                    timeout=scheduler.next_wake_ms() / 1000,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                wake.cancel()
            scheduler.wakeup.clear()
            batch: dict[TopicPartition, list[Any]] = {}
            if fetch.done():
                batch, fetch = fetch.result(), None
            await scheduler.handle_batch(batch)
    finally:
        if fetch is not None:
            fetch.cancel()
            await asyncio.gather(fetch, return_exceptions=True)


async def run(
    settings: Settings,
    *,
    clock: Callable[[], datetime] = _now,
    on_ready: Callable[[Scheduler], None] | None = None,
) -> None:
    """Run a scheduler instance until cancelled (``clock``: the core's ``now``; tests
    pass a fake one, and ``on_ready`` gets the instance so they can set its ``wakeup``
    after moving the fake clock, as the benchmark does)."""
    await ensure_topics(settings)
    instance = f"{socket.gethostname()}-{os.getpid()}"
    async with (
        DagVersionCache(settings) as cache,
        EventProducer(
            settings, source=SCHEDULER_SOURCE, client_id=f"scheduler-{instance}"
        ) as producer,
    ):
        await cache.wait_caught_up()
        scheduler = Scheduler(settings, cache, producer, clock=clock)
        if on_ready is not None:
            on_ready(scheduler)
        cache.on_change(scheduler.catalog_changed)
        scheduler.assets = AssetFeed(settings, producer)
        await scheduler.assets.start()  # the whole book before any partition is decided
        scheduler.watchers = WatcherRuntime(scheduler)
        consumer = AIOKafkaConsumer(
            group_id=group_id_for(settings),
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
        lag = ConsumerLag(consumer, group_id_for(settings)).start()  # consumer-lag gauge
        log.info("scheduler %s started", instance)
        beating = start_beating(
            settings,
            producer,
            service="scheduler",
            instance=f"scheduler-{instance}",
            details=lambda: {"partitions": sorted(scheduler.owned)},
        )
        try:
            await _consume(consumer, scheduler)
        finally:
            beating.cancel()
            await lag.stop()
            await scheduler.drop_arbiter_role()
            await scheduler.assets.stop()
            await scheduler.watchers.stop()
            await consumer.stop()
            log.info("scheduler %s stopped", instance)


__all__ = ["Scheduler", "run", "GROUP_ID", "group_id_for"]
