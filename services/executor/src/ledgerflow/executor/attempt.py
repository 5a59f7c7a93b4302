"""One task attempt from work item to acknowledged report.

Order of events for an attempt: ``TaskAttemptStarted`` (with the child's pid and the
executor's clock), log chunks while it runs, then ``TaskAttemptSucceeded`` or
``TaskAttemptFailed``. :func:`run_attempt` returns only once the final report is
acknowledged by the broker; only then may the work item's offset be committed.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ledgerflow.common.events import (
    Envelope,
    RunTaskAttempt,
    TaskAttemptFailed,
    TaskAttemptStarted,
    TaskAttemptSucceeded,
    deterministic_id,
    make_envelope,
)
from ledgerflow.executor.child import RUNNER_ARGV, Outcome, TaskProcess
from ledgerflow.executor.logstream import DEFAULT_CAP_BYTES, AttemptLogStream
from ledgerflow.executor.versions import DagVersionCache

log = logging.getLogger(__name__)

SOURCE = "ledgerflow/executor"
MAX_RETURN_VALUE_BYTES = 512 * 1024


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class AttemptContext:
    """What every attempt of one executor shares."""

    producer: Any  # ledgerflow.common.kafka_io.EventProducer
    cache: DagVersionCache
    runs_topic: str
    logs_topic: str
    executor_id: str
    hostname: str
    version_timeout: float = 30.0
    log_cap_bytes: int = DEFAULT_CAP_BYTES
    runner_argv: Sequence[str] = RUNNER_ARGV
    clock: Callable[[], datetime] = _now


class AttemptEnd(enum.Enum):
    REPORTED = "reported"  # a final report is acknowledged: commit the work item
    ABANDONED = "abandoned"  # shut down before it started: leave the item uncommitted


@dataclass
class AttemptHandle:
    """Lets the service abort a running attempt (shutdown after the grace period)."""

    abort_reason: str | None = None
    process: TaskProcess | None = None
    _aborted: asyncio.Event = field(default_factory=asyncio.Event)

    def abort(self, reason: str) -> None:
        if self.abort_reason is None:
            self.abort_reason = reason
            self._aborted.set()
            if self.process is not None:
                self.process.abort(reason)


def _ids(kind: str, item: RunTaskAttempt) -> str:
    return str(
        deterministic_id(
            kind, item.dag_id, item.run_id, item.task_id, item.map_index, item.try_number
        )
    )


def _envelope(
    ctx: AttemptContext,
    data: Any,
    *,
    kind: str,
    item: RunTaskAttempt,
    causation_id: str,
    sequence: int,
    time: datetime,
) -> Envelope:
    return make_envelope(
        data,
        id=_ids(kind, item),
        source=SOURCE,
        time=time,
        aggregate_key=item.dag_id,
        sequence=sequence,
        correlation_id=item.run_id,
        causation_id=causation_id,
    )


async def send_until_acked(
    producer: Any, topic: str, envelope: Envelope, traceparent: str | None
) -> None:
    """Send and wait for the ack, retrying with backoff while the broker is away.

    The event id is deterministic, so a resend after a lost ack is a harmless duplicate.
    """
    delay = 0.2
    while True:
        try:
            await producer.send(topic, envelope, traceparent=traceparent)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(
                "sending %s %s failed (%r); retrying in %.1f s",
                envelope.type,
                envelope.id,
                exc,
                delay,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


def runner_payload(item: RunTaskAttempt, source: str, filename: str) -> dict[str, Any]:
    """The JSON the task runner reads on stdin (docs/CONTRACTS-dev.md)."""
    return {
        "source": source,
        "filename": filename,
        "dag_id": item.dag_id,
        "task_id": item.task_id,
        "run_id": item.run_id,
        "map_index": item.map_index,
        "try_number": item.try_number,
        "conf": item.conf,
        "logical_date": item.logical_date.isoformat() if item.logical_date else None,
        "upstream_xcoms": item.upstream_xcoms,
    }


def _bounded(outcome: Outcome) -> Outcome:
    """A return value too large for the run log fails the attempt (it can't be stored)."""
    if outcome.status != "success":
        return outcome
    size = len(json.dumps(outcome.return_value))
    if size > MAX_RETURN_VALUE_BYTES:
        return Outcome(
            "failed",
            error=(
                f"the task's return value is {size} bytes of JSON; the limit is "
                f"{MAX_RETURN_VALUE_BYTES} bytes (store large data elsewhere)"
            ),
            error_type="XComTooLarge",
            retryable=False,
        )
    return outcome


async def run_attempt(
    ctx: AttemptContext,
    item: RunTaskAttempt,
    *,
    work_event_id: str,
    handle: AttemptHandle,
    traceparent: str | None = None,
) -> AttemptEnd:
    """Run one attempt and report it. See the module docstring for the order of events."""
    ref = dict(
        dag_id=item.dag_id,
        run_id=item.run_id,
        task_id=item.task_id,
        map_index=item.map_index,
        try_number=item.try_number,
    )

    async def finish(outcome: Outcome, logs: AttemptLogStream | None) -> AttemptEnd:
        end_date = ctx.clock()
        outcome = _bounded(outcome)
        data: TaskAttemptSucceeded | TaskAttemptFailed
        if outcome.status == "success":
            data = TaskAttemptSucceeded(
                **ref,
                end_date=end_date,
                return_value=outcome.return_value,
                executor_id=ctx.executor_id,
            )
            kind = "TaskAttemptSucceeded"
        else:
            data = TaskAttemptFailed(
                **ref,
                end_date=end_date,
                error=outcome.error or "task failed",
                error_type=outcome.error_type,
                retryable=outcome.retryable,
                executor_id=ctx.executor_id,
            )
            kind = "TaskAttemptFailed"
        envelope = _envelope(
            ctx, data, kind=kind, item=item, causation_id=work_event_id, sequence=1, time=end_date
        )
        if logs is not None:
            if outcome.status == "success":
                logs.write("system", "attempt succeeded")
            else:
                logs.write("system", f"attempt failed: {outcome.error}")
            # Logs and report travel in parallel; both are acknowledged before we return.
            await asyncio.gather(
                logs.close(),
                send_until_acked(ctx.producer, ctx.runs_topic, envelope, traceparent),
            )
        else:
            await send_until_acked(ctx.producer, ctx.runs_topic, envelope, traceparent)
        return AttemptEnd.REPORTED

    # 1. The DAG version (its source code). Usually cached; otherwise wait for it.
    version = ctx.cache.peek(item.version_id)
    if version is None:
        getter = asyncio.ensure_future(ctx.cache.get(item.version_id, timeout=ctx.version_timeout))
        aborted = asyncio.ensure_future(handle._aborted.wait())
        await asyncio.wait({getter, aborted}, return_when=asyncio.FIRST_COMPLETED)
        aborted.cancel()
        if not getter.done():
            getter.cancel()
            return AttemptEnd.ABANDONED
        version = getter.result()
        if version is None:
            return await finish(
                Outcome(
                    "failed",
                    error=(
                        f"DAG version {item.version_id!r} of DAG {item.dag_id!r} is unknown to "
                        f"this executor: it did not appear on the DAG topic within "
                        f"{ctx.version_timeout:g} s"
                    ),
                    error_type="UnknownDagVersion",
                    retryable=False,
                ),
                None,
            )
    if handle.abort_reason is not None:
        return AttemptEnd.ABANDONED

    # 2. Start the child, then report that it started (with its pid).
    logs = AttemptLogStream(
        ctx.producer,
        ctx.logs_topic,
        item,
        source=SOURCE,
        causation_id=work_event_id,
        traceparent=traceparent,
        cap_bytes=ctx.log_cap_bytes,
        clock=ctx.clock,
    )
    process = TaskProcess(
        runner_payload(item, version.source_code, version.filename),
        on_line=logs.write,
        argv=ctx.runner_argv,
    )
    start_date = ctx.clock()
    try:
        pid = await process.start()
    except OSError as exc:
        return await finish(
            Outcome(
                "failed",
                error=f"could not start the task process: {exc}",
                error_type="ProcessStartError",
                retryable=True,
            ),
            logs,
        )
    handle.process = process
    if handle.abort_reason is not None:  # aborted while the child was starting
        process.abort(handle.abort_reason)
    started = TaskAttemptStarted(
        **ref, start_date=start_date, hostname=ctx.hostname, executor_id=ctx.executor_id, pid=pid
    )
    started_env = _envelope(
        ctx,
        started,
        kind="TaskAttemptStarted",
        item=item,
        causation_id=work_event_id,
        sequence=0,
        time=start_date,
    )
    started_sent = asyncio.ensure_future(
        send_until_acked(ctx.producer, ctx.runs_topic, started_env, traceparent)
    )
    logs.write(
        "system",
        (
            f"attempt {item.try_number} of {item.dag_id}.{item.task_id} "
            f"(run {item.run_id}, map index {item.map_index}) started on "
            f"{ctx.hostname} as pid {pid}"
        ),
    )

    # 3. Wait for it to end (or time out, or be aborted), then report.
    try:
        outcome = await process.wait(execution_timeout=item.execution_timeout_seconds)
    finally:
        handle.process = None
    await started_sent  # the Started report precedes the final one
    return await finish(outcome, logs)


async def report_executor_error(
    ctx: AttemptContext,
    item: RunTaskAttempt,
    *,
    work_event_id: str,
    error: str,
    traceparent: str | None = None,
) -> None:
    """Fail an attempt that the executor itself could not carry through."""
    end_date = ctx.clock()
    data = TaskAttemptFailed(
        dag_id=item.dag_id,
        run_id=item.run_id,
        task_id=item.task_id,
        map_index=item.map_index,
        try_number=item.try_number,
        end_date=end_date,
        error=error,
        error_type="ExecutorError",
        retryable=True,
        executor_id=ctx.executor_id,
    )
    envelope = _envelope(
        ctx,
        data,
        kind="TaskAttemptFailed",
        item=item,
        causation_id=work_event_id,
        sequence=1,
        time=end_date,
    )
    await send_until_acked(ctx.producer, ctx.runs_topic, envelope, traceparent)
