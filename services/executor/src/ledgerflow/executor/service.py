"""The executor service: work items in, task processes run, reports out.

``run(settings, queue=..., slots=...)`` runs until cancelled. It joins the consumer
group ``ledgerflow-executor-<queue>`` (``<prefix>-executor-<queue>``) on the queue's work topic and runs up to
``slots`` attempts at once, each in its own child process (:mod:`.attempt`). A work
item's offset is committed once the attempt's start is acknowledged on the run log (or,
for an attempt that never started, its report), and per partition only up to the
lowest item still in flight (:mod:`.offsets`), so a crash never skips work, and an
attempt that had started is retried by the scheduler's zombie detector with the next
try number rather than run again under the same one (docs/adr/0010). Running attempts
heartbeat; cancels from the control topic kill them (:mod:`.control`). Fetching pauses
while every slot is busy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import (
    AIOKafkaConsumer,
    ConsumerRebalanceListener,
    TopicPartition,
)
from ledgerflow.common.dag_versions import DagVersionCache
from ledgerflow.common.events import CancelTaskAttempt, Envelope, MalformedMessage, RunTaskAttempt
from ledgerflow.common.kafka_io import (
    EventProducer,
    consumer_config,
    decode_record,
    ensure_topics,
    traceparent_of,
)
from ledgerflow.common.liveness import start_beating
from ledgerflow.common.metrics import ConsumerLag, watch_slots
from ledgerflow.common.settings import Settings
from ledgerflow.executor.attempt import (
    SOURCE,
    AttemptContext,
    AttemptEnd,
    AttemptHandle,
    report_executor_error,
    run_attempt,
)
from ledgerflow.executor.child import RUNNER_ARGV, child_environment
from ledgerflow.executor.config_cache import ConfigCache
from ledgerflow.executor.control import (
    CancelledAttempts,
    ControlListener,
    Heartbeats,
    attempt_id,
)
from ledgerflow.executor.forkserver import DEFAULT_PRELOAD, ForkServer, ForkServerError
from ledgerflow.executor.logstream import DEFAULT_CAP_BYTES
from ledgerflow.executor.offsets import OffsetTracker
from ledgerflow.executor.recent import AttemptId, RecentAttempts
from ledgerflow.executor.task_api import TaskApiAccess
from ledgerflow.executor.tracing import traced_attempt

log = logging.getLogger(__name__)

Position = tuple[TopicPartition, int]

REPORT_GRACE_S = 15.0  # after killing attempts at shutdown, how long their reports may take
REVOKE_START_WAIT_S = 5.0  # on revocation, how long to wait for attempts' starts to be acked


def group_id_for(settings: Settings, queue: str) -> str:
    """The consumer group of a queue's executors: ``ledgerflow-executor-<queue>`` under the
    default topic prefix. The prefix is part of the name so that two deployments (or two
    test runs) sharing one broker never rebalance each other's executors."""
    return f"{settings.topic_prefix}-executor-{queue}"


@dataclass
class _Work:
    """A fetched work item: decoded, or the reason it cannot be."""

    record: Any
    position: Position
    envelope: Envelope | None
    problem: str | None


def _decode_work(record: Any) -> _Work:
    position = (TopicPartition(record.topic, record.partition), record.offset)
    try:
        envelope = decode_record(record)
    except MalformedMessage as exc:
        return _Work(record, position, None, str(exc))
    if not isinstance(envelope.data, RunTaskAttempt):
        return _Work(
            record, position, None, f"expected a RunTaskAttempt work item, got {envelope.data.type}"
        )
    return _Work(record, position, envelope, None)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, executor: Executor) -> None:
        self._executor = executor

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._executor._partitions_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("assigned work partitions %s", sorted(tp.partition for tp in assigned))


class Executor:
    """One executor process for one queue. ``start()``, ``serve()``, ``stop()``; a
    second ``stop()`` is harmless."""

    def __init__(
        self,
        settings: Settings,
        *,
        queue: str = "default",
        slots: int = 4,
        shutdown_grace: float | None = None,
        version_timeout: float | None = None,
        log_cap_bytes: int = DEFAULT_CAP_BYTES,
        runner_argv: Sequence[str] = RUNNER_ARGV,
        remember_attempts: int = 10_000,
    ) -> None:
        if slots < 1:
            raise ValueError("slots must be at least 1")
        self.settings = settings
        self.queue = queue
        self.slots = slots
        self.group_id = group_id_for(settings, queue)
        self.hostname = socket.gethostname()
        self.executor_id = f"{self.hostname}:{os.getpid()}:{queue}:{uuid.uuid4().hex[:8]}"
        self._grace = (
            shutdown_grace
            if shutdown_grace is not None
            else settings.executor_shutdown_grace_seconds
        )
        self._version_timeout = (
            version_timeout
            if version_timeout is not None
            else settings.executor_version_timeout_seconds
        )
        self._log_cap = log_cap_bytes
        self._runner_argv = tuple(runner_argv)
        self._producer = EventProducer(
            settings, source=SOURCE, client_id=f"ledgerflow-executor-{queue}"
        )
        self._cache = DagVersionCache(settings)
        self._config = ConfigCache(settings)
        # A custom runner (tests' stand-ins) is started as a program, never forked.
        self._fork_server: ForkServer | None = None
        if settings.executor_start == "fork" and tuple(runner_argv) == tuple(RUNNER_ARGV):
            preload = [m.strip() for m in settings.executor_preload.split(",") if m.strip()]
            self._fork_server = ForkServer(
                env=child_environment(os.environ), preload=[*DEFAULT_PRELOAD, *preload]
            )
        self._consumer: AIOKafkaConsumer | None = None
        self._ctx: AttemptContext | None = None
        self._tracker = OffsetTracker()
        self._recent = RecentAttempts(remember_attempts)
        self._pending: deque[_Work] = deque()
        self._attempts: dict[asyncio.Task[None], AttemptHandle] = {}
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._slot_freed = asyncio.Event()
        self._commit_wanted = asyncio.Event()
        self._commit_lock = asyncio.Lock()
        self._committer: asyncio.Task[None] | None = None
        self._stopping = False
        self._stop_task: asyncio.Task[None] | None = None
        # Started attempts (their start is acknowledged) and every live attempt's handle.
        self._handles: dict[AttemptId, AttemptHandle] = {}
        self._cancelled = CancelledAttempts(remember_attempts)
        self._heartbeats = Heartbeats(
            self._producer,
            settings.topics.runs,
            self.executor_id,
            settings.heartbeat_interval_seconds,
            running=lambda: [aid for aid, h in self._handles.items() if h.started],
        )
        self._control = ControlListener(settings, self._on_cancel)
        self._liveness: asyncio.Task[None] | None = None
        self._lag: ConsumerLag | None = None
        self._forget_slots: Callable[[], None] | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        await ensure_topics(self.settings, queues=[self.queue])
        await self._producer.start()
        await self._cache.start()
        await self._config.start()  # reads variables/connections set so far
        await self._control.start()  # before fetching work: no cancel is missed
        if self._fork_server is not None:
            try:
                await self._fork_server.start()
            except ForkServerError as e:  # attempts fall back to fresh interpreters
                log.warning("%s; attempts will start fresh interpreters", e)
        config = {
            **consumer_config(self.settings),
            "group_id": self.group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "client_id": self.executor_id,
        }
        consumer = AIOKafkaConsumer(**config)
        consumer.subscribe([self.settings.topics.work(self.queue)], listener=_Rebalance(self))
        await consumer.start()
        self._consumer = consumer
        # The queue's lag (what KEDA scales on) from the commit points, and the slots.
        self._lag = ConsumerLag(consumer, self.group_id, consumed=self._tracker.commit_point)
        self._lag.start()
        self._forget_slots = watch_slots(self.queue, lambda: len(self._attempts), self.slots)
        self._ctx = AttemptContext(
            producer=self._producer,
            cache=self._cache,
            runs_topic=self.settings.topics.runs,
            logs_topic=self.settings.topics.logs,
            executor_id=self.executor_id,
            hostname=self.hostname,
            version_timeout=self._version_timeout,
            log_cap_bytes=self._log_cap,
            runner_argv=self._runner_argv,
            xcom_max_bytes=self.settings.xcom_max_bytes,
            config=self._config,
            fork_server=self._fork_server,
            warm_dags=self.settings.executor_warm_dags,
            memory_limit_bytes=(
                self.settings.executor_memory_limit_mb * 1024 * 1024
                if self.settings.executor_memory_limit_mb
                else None
            ),
            task_api=TaskApiAccess.from_settings(self.settings),
        )
        self._committer = asyncio.get_running_loop().create_task(self._commit_loop())
        self._heartbeats.start()
        self._liveness = start_beating(
            self.settings,
            self._producer,
            service="executor",
            instance=self.executor_id,
            details=lambda: {
                "queue": self.queue,
                "slots": self.slots,
                "running": len(self._attempts),
            },
        )
        log.info(
            "executor %s serving queue %r with %d slots", self.executor_id, self.queue, self.slots
        )

    async def stop(self) -> None:
        """Stop fetching, let running attempts finish for the grace period, then kill
        them, report, commit and leave the group. Safe to call twice."""
        if self._stop_task is None:
            self._stop_task = asyncio.get_running_loop().create_task(self._stop())
        await asyncio.shield(self._stop_task)

    async def _stop(self) -> None:
        self._stopping = True
        self._pending.clear()  # never started: uncommitted, so they are redelivered
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                self._consumer.pause(*self._consumer.assignment())
        running = list(self._attempts)
        if running:
            log.info("waiting up to %g s for %d running attempts", self._grace, len(running))
            _, late = await asyncio.wait(running, timeout=self._grace)
            for task in late:
                self._attempts[task].abort(
                    f"the executor shut down and killed the attempt after its "
                    f"{self._grace:g} s grace period"
                )
            if late:
                _, stuck = await asyncio.wait(late, timeout=REPORT_GRACE_S)
                for task in stuck:
                    task.cancel()
                await asyncio.gather(*stuck, return_exceptions=True)
        await self._heartbeats.stop()
        if self._liveness is not None:
            self._liveness.cancel()
        if self._lag is not None:
            await self._lag.stop()
        if self._forget_slots is not None:
            self._forget_slots()
        await self._control.stop()
        log.debug("attempts settled; waiting for dead letters")
        if self._side_tasks:
            await asyncio.wait(list(self._side_tasks), timeout=REPORT_GRACE_S)
        log.debug("final commit")
        if self._committer is not None:
            self._committer.cancel()
            await asyncio.gather(self._committer, return_exceptions=True)
        if self._consumer is not None:
            await self._commit_now()
            with contextlib.suppress(Exception):
                await self._consumer.stop()  # leaves the group
        log.debug("consumer stopped")
        await self._cache.stop()
        await self._config.stop()
        if self._fork_server is not None:
            await self._fork_server.stop()
        log.debug("cache stopped")
        await self._producer.stop()
        log.info("executor %s stopped", self.executor_id)

    # ------------------------------------------------------------------ fetching
    async def serve(self) -> None:
        """Fetch and run work items until cancelled (or stopped)."""
        consumer = self._consumer
        if consumer is None:
            raise RuntimeError("Executor.serve() before start()")
        while not self._stopping:
            self._slot_freed.clear()
            self._start_pending()
            full = len(self._attempts) >= self.slots or bool(self._pending)
            assignment = consumer.assignment()
            if full:
                consumer.pause(*assignment)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        await self._slot_freed.wait()
                # Keeps this consumer's membership alive; paused partitions yield nothing.
                batch = await consumer.getmany(timeout_ms=0)
            else:
                consumer.resume(*assignment)
                batch = await consumer.getmany(
                    timeout_ms=1000, max_records=self.slots - len(self._attempts)
                )
            for tp, records in batch.items():
                for record in records:
                    self._tracker.received(tp, record.offset)
                    self._pending.append(_decode_work(record))

    def _start_pending(self) -> None:
        while self._pending and not self._stopping:
            work = self._pending[0]
            if work.envelope is None:
                self._pending.popleft()
                self._side(self._dead_letter(work))
                continue
            item = work.envelope.data
            assert isinstance(item, RunTaskAttempt)
            aid: AttemptId = (
                item.dag_id,
                item.run_id,
                item.task_id,
                item.map_index,
                item.try_number,
            )
            if self._recent.is_running(aid):
                self._pending.popleft()
                log.info("duplicate work item for running attempt %s; not running it twice", aid)
                self._recent.attach(aid, work.position)
                continue
            if self._recent.is_finished(aid):
                self._pending.popleft()
                log.info("duplicate work item for finished attempt %s; skipped", aid)
                self._settle([work.position])
                continue
            cancel = self._cancelled.get(aid)
            if len(self._attempts) >= self.slots and cancel is None:
                return
            self._pending.popleft()
            self._recent.begin(aid, work.position)
            handle = AttemptHandle()
            if cancel is not None:  # cancelled before it arrived: reported, never run
                handle.cancel(cancel.reason, state=cancel.state, grace=0)
            handle.on_started = lambda aid=aid: self._settle(self._recent.started(aid))
            self._handles[aid] = handle
            task = asyncio.get_running_loop().create_task(
                traced_attempt(
                    self._attempt(aid, item, work, handle, traceparent_of(work.record)),
                    item,
                    work.record,
                    executor_id=self.executor_id,
                    group=self.group_id,
                )
            )
            self._attempts[task] = handle

    async def _attempt(
        self,
        aid: AttemptId,
        item: RunTaskAttempt,
        work: _Work,
        handle: AttemptHandle,
        traceparent: str | None,
    ) -> None:
        assert self._ctx is not None and work.envelope is not None
        envelope = work.envelope
        end = AttemptEnd.ABANDONED
        try:
            try:
                end = await run_attempt(
                    self._ctx,
                    item,
                    work_event_id=envelope.id,
                    handle=handle,
                    traceparent=traceparent,
                )
            except Exception as exc:  # a bug of ours: fail the attempt rather than hang it
                log.exception("attempt %s failed inside the executor", aid)
                await report_executor_error(
                    self._ctx,
                    item,
                    work_event_id=envelope.id,
                    error=f"executor error: {exc!r}",
                    traceparent=traceparent,
                )
                end = AttemptEnd.REPORTED
        finally:
            task = asyncio.current_task()
            self._attempts.pop(task, None)  # type: ignore[arg-type]
            self._handles.pop(aid, None)
            if handle.poison is not None:
                # Reported as failed (so the task instance does not hang) and set aside
                # with the reason, so someone can look at it.
                self._side(
                    self._dead_letter(
                        _Work(work.record, work.position, None, handle.poison), settle=False
                    )
                )
            if end is AttemptEnd.REPORTED:
                self._settle(self._recent.finish(aid))
            else:
                self._recent.abandon(aid)
            self._slot_freed.set()

    def _on_cancel(self, cancel: CancelTaskAttempt) -> None:
        """A ``CancelTaskAttempt``: kill the attempt if it runs here, and remember it so
        its work item, if it comes later, is never run."""
        aid = attempt_id(cancel)
        self._cancelled.add(cancel)
        handle = self._handles.get(aid)
        if handle is not None:
            log.info("cancelling attempt %s: %s", aid, cancel.reason)
            handle.cancel(
                cancel.reason, state=cancel.state, grace=self.settings.cancel_grace_seconds
            )

    async def _dead_letter(self, work: _Work, *, settle: bool = True) -> None:
        while True:
            try:
                await self._producer.dead_letter(
                    work.record, work.problem or "unreadable", consumer=self.group_id
                )
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("dead-lettering failed (%r); retrying", exc)
                await asyncio.sleep(1.0)
        if settle:
            self._settle([work.position])

    def _side(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    # ------------------------------------------------------------------ offsets
    def _settle(self, positions: list[Position]) -> None:
        for tp, offset in positions:
            self._tracker.done(tp, offset)
        self._commit_wanted.set()

    async def _commit_loop(self) -> None:
        # asyncio.timeout, not wait_for: in Python 3.11 wait_for can swallow a
        # cancellation that races with the event being set (cpython gh-86296).
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5.0):  # also retries failed commits
                    await self._commit_wanted.wait()
            self._commit_wanted.clear()
            await self._commit_now()

    async def _commit_now(self, only: set[TopicPartition] | None = None) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        async with self._commit_lock:
            assigned = consumer.assignment()
            offsets = {
                tp: off for tp, off in self._tracker.pending_commits(only).items() if tp in assigned
            }
            if not offsets:
                return
            try:
                await consumer.commit(offsets)
            except Exception as exc:
                log.warning("commit of %s failed (%r); will retry", offsets, exc)
                return
            self._tracker.committed(dict(offsets))

    async def _partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # An attempt whose start is not yet acknowledged holds its work item uncommitted:
        # the partition's next owner runs it. Its ack is usually milliseconds away, so
        # the rebalance waits for it; one still waiting (e.g. for its DAG version) is
        # abandoned (its task has not run: the child gets its request only once started).
        deadline = asyncio.get_running_loop().time() + REVOKE_START_WAIT_S
        while unstarted := [h for t, h in self._attempts.items() if not (h.started or t.done())]:
            if asyncio.get_running_loop().time() >= deadline:
                for handle in unstarted:
                    handle.abort("its work partition was revoked before the attempt started")
                break
            await asyncio.sleep(0.005)
        await self._commit_now(revoked)
        self._tracker.forget(revoked)
        self._pending = deque(w for w in self._pending if w.position[0] not in revoked)
        log.info("revoked work partitions %s", sorted(tp.partition for tp in revoked))


async def run(
    settings: Settings,
    *,
    queue: str = "default",
    slots: int = 4,
    shutdown_grace: float | None = None,
    version_timeout: float | None = None,
    log_cap_bytes: int = DEFAULT_CAP_BYTES,
    runner_argv: Sequence[str] = RUNNER_ARGV,
) -> None:
    """Run an executor for ``queue`` until cancelled, then shut it down cleanly."""
    executor = Executor(
        settings,
        queue=queue,
        slots=slots,
        shutdown_grace=shutdown_grace,
        version_timeout=version_timeout,
        log_cap_bytes=log_cap_bytes,
        runner_argv=runner_argv,
    )
    try:
        await executor.start()
        await executor.serve()
    finally:
        await executor.stop()
