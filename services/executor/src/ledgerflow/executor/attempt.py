"""One task attempt from work item to acknowledged report.

Order of events for an attempt: ``TaskAttemptStarted`` (with the child's pid and the
executor's clock), log chunks while it runs, then one final report:
``TaskAttemptSucceeded``, ``TaskAttemptSkipped``, ``TaskAttemptRescheduled`` or
``TaskAttemptFailed`` (ADR 0006, "runner protocol"). The work item's offset may be
committed once ``TaskAttemptStarted`` is acknowledged (``AttemptHandle.on_started``):
from then on a dead executor's attempt is the zombie detector's to retry, with the next
try number, and is never run twice under the same one (docs/adr/0010). An attempt that
ends before it starts is settled when its report is acknowledged, which is when
:func:`run_attempt` returns.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeAlias

from ledgerflow.common import metrics, telemetry
from ledgerflow.common.dag_versions import DagVersionCache
from ledgerflow.common.events import (
    DagVersionPublished,
    Envelope,
    RunTaskAttempt,
    TaskAttemptFailed,
    TaskAttemptRescheduled,
    TaskAttemptSkipped,
    TaskAttemptStarted,
    TaskAttemptSucceeded,
    deterministic_id,
    make_envelope,
)
from ledgerflow.executor.child import RUNNER_ARGV, Outcome, TaskProcess
from ledgerflow.executor.config_cache import ConfigCache
from ledgerflow.executor.forkserver import ForkServer
from ledgerflow.executor.logstream import DEFAULT_CAP_BYTES, AttemptLogStream
from ledgerflow.executor.task_api import TaskApiAccess

log = logging.getLogger(__name__)

SOURCE = "ledgerflow/executor"
DEFAULT_XCOM_MAX_BYTES = 256 * 1024  # Settings.xcom_max_bytes's default
# Like Airflow's [core] max_templated_field_length: a rendered field longer than this
# (as JSON) is shown truncated; it is for display only.
RENDERED_FIELD_MAX_CHARS = 4096

FinalReport: TypeAlias = (
    TaskAttemptSucceeded | TaskAttemptSkipped | TaskAttemptRescheduled | TaskAttemptFailed
)


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
    xcom_max_bytes: int = DEFAULT_XCOM_MAX_BYTES
    # Variables and connections for the request, and the masker of their secrets.
    config: ConfigCache | None = None
    # Warm process attempts are forked from (ADR 0008); None: a fresh interpreter each.
    fork_server: ForkServer | None = None
    warm_dags: bool = False  # ADR 0017: attempts of one DAG file fork from its zygote
    memory_limit_bytes: int | None = None
    # Where tasks reach the API and the key their tokens are signed with (None: no token).
    task_api: TaskApiAccess | None = None


class AttemptEnd(enum.Enum):
    REPORTED = "reported"  # a final report is acknowledged: commit the work item
    ABANDONED = "abandoned"  # shut down before it started: leave the item uncommitted


@dataclass
class AttemptHandle:
    """Lets the service abort a running attempt (shutdown after the grace period) or
    cancel it (a ``CancelTaskAttempt``), and learn when its start is acknowledged.

    ``cancel_state`` is what the attempt is reported as once killed: what the user asked
    for (``success``/``skipped``), else a non-retryable failure. The scheduler decided the
    instance's state already; the report only ends the attempt in its log.
    """

    abort_reason: str | None = None
    process: TaskProcess | None = None
    cancel_state: str | None = None
    # Set when the work item is poison (its DAG version never appeared): the service
    # dead-letters it with this reason besides reporting the failure.
    poison: str | None = None
    on_started: Callable[[], None] | None = None
    started: bool = False
    _aborted: asyncio.Event = field(default_factory=asyncio.Event)
    _cancel_grace: float = 5.0

    def abort(self, reason: str) -> None:
        if self.abort_reason is None:
            self.abort_reason = reason
            self._aborted.set()
            if self.process is not None:
                self.process.abort(reason)

    def cancel(self, reason: str, *, state: str, grace: float) -> None:
        """SIGTERM the attempt, SIGKILL after ``grace``; report it as ``state``."""
        if self.abort_reason is None:
            self.abort_reason = reason
            self.cancel_state = state
            self._cancel_grace = grace
            self._aborted.set()
            if self.process is not None:
                self.process.cancel(reason, grace)

    def mark_started(self) -> None:
        self.started = True
        if self.on_started is not None:
            self.on_started()


def cancelled_outcome(state: str, reason: str) -> Outcome:
    """What a cancelled attempt is reported as (see :class:`AttemptHandle`)."""
    if state == "success":
        return Outcome("success")
    if state == "skipped":
        return Outcome("skipped", reason=reason)
    return Outcome("failed", error=reason, error_type="TaskCancelled", retryable=False)


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


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def runner_payload(
    item: RunTaskAttempt, version: DagVersionPublished, *, xcom_max_bytes: int
) -> dict[str, Any]:
    """The request the task runner reads on stdin (ADR 0006, "runner protocol").

    ``variables`` and ``connections`` start empty: the executor's config cache fills in
    what the task may see (see :func:`run_attempt`).
    """
    try:
        retries = version.dag.task(item.task_id).retries
    except KeyError:  # the runner reports a task missing from the file itself
        retries = 0
    # Deprecated return-value-by-task-id view, for runners older than ADR 0006.
    upstream = dict(item.upstream_xcoms) or {
        x.task_id: x.value for x in item.xcoms if x.key == "return_value" and x.map_index == -1
    }
    return {
        "source": version.source_code,
        "filename": version.filename,
        "extra_files": dict(version.extra_files),
        "dag_id": item.dag_id,
        "task_id": item.task_id,
        "run_id": item.run_id,
        "map_index": item.map_index,
        "map_length": item.map_length,
        "try_number": item.try_number,
        "max_tries": item.max_tries if item.max_tries is not None else retries + 1,
        "conf": item.conf,
        "logical_date": _iso(item.logical_date),
        "data_interval_start": _iso(item.data_interval_start),
        "data_interval_end": _iso(item.data_interval_end),
        "run_type": item.run_type,
        "xcoms": [x.model_dump(mode="json") for x in item.xcoms],
        "upstream_xcoms": upstream,
        "variables": {},
        "connections": {},
        "xcom_max_bytes": xcom_max_bytes,
        # Assets (ADR 0013): the run's triggering events, the inlets' latest events.
        "triggering_asset_events": [dict(e) for e in item.triggering_asset_events],
        "inlet_events": {k: [dict(e) for e in v] for k, v in item.inlet_events.items()},
    }


def _json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")).encode())


def bound_xcoms(outcome: Outcome, xcom_max_bytes: int) -> Outcome:
    """XComs larger than ``xcom_max_bytes`` (JSON, all keys together) fail the attempt
    with a message naming the size and the limit; nothing is truncated (ADR 0006)."""
    if outcome.status != "success":
        return outcome
    size = _json_size({"return_value": outcome.return_value, **outcome.xcoms})
    if size <= xcom_max_bytes:
        return outcome
    return Outcome(
        "failed",
        error=(
            f"the task's XComs are {size} bytes of JSON; the limit is {xcom_max_bytes} "
            f"bytes (LEDGERFLOW_XCOM_MAX_BYTES): store large data elsewhere and push a "
            f"reference to it"
        ),
        error_type="XComTooLarge",
        retryable=False,
        rendered_fields=outcome.rendered_fields,
    )


def bound_rendered_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Rendered template fields for display, each at most
    :data:`RENDERED_FIELD_MAX_CHARS` characters of JSON (longer ones are cut, saying so)."""
    out: dict[str, Any] = {}
    for name, value in fields.items():
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        if len(text) > RENDERED_FIELD_MAX_CHARS:
            prefix = f"Truncated (the rendered value has {len(text)} characters): "
            value = prefix + text[: RENDERED_FIELD_MAX_CHARS - len(prefix)]
        out[name] = value
    return out


def final_report(
    outcome: Outcome, item: RunTaskAttempt, *, end_date: datetime, executor_id: str
) -> FinalReport:
    """The run-log fact an outcome becomes."""
    ref = dict(
        dag_id=item.dag_id,
        run_id=item.run_id,
        task_id=item.task_id,
        map_index=item.map_index,
        try_number=item.try_number,
        end_date=end_date,
        executor_id=executor_id,
    )
    rendered = bound_rendered_fields(outcome.rendered_fields)
    if outcome.status == "success":
        return TaskAttemptSucceeded(
            **ref,
            return_value=outcome.return_value,
            xcoms=dict(outcome.xcoms),
            follow_task_ids=outcome.follow_task_ids,
            short_circuit=outcome.short_circuit,
            rendered_fields=rendered,
            asset_events=outcome.asset_events,
        )
    if outcome.status == "skipped":
        return TaskAttemptSkipped(**ref, reason=outcome.reason, rendered_fields=rendered)
    if outcome.status == "rescheduled" and outcome.reschedule_date is not None:
        return TaskAttemptRescheduled(**ref, reschedule_date=outcome.reschedule_date)
    return TaskAttemptFailed(
        **ref,
        error=outcome.error or "task failed",
        error_type=outcome.error_type,
        retryable=outcome.retryable,
        rendered_fields=rendered,
    )


def _final_log_line(report: FinalReport) -> str:
    if isinstance(report, TaskAttemptSucceeded):
        return "attempt succeeded"
    if isinstance(report, TaskAttemptSkipped):
        return f"attempt skipped: {report.reason}" if report.reason else "attempt skipped"
    if isinstance(report, TaskAttemptRescheduled):
        return f"attempt rescheduled: to run again at {report.reschedule_date.isoformat()}"
    return f"attempt failed: {report.error}"


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
        if handle.cancel_state is not None and handle.abort_reason is not None:
            outcome = cancelled_outcome(handle.cancel_state, handle.abort_reason)
        outcome = bound_xcoms(outcome, ctx.xcom_max_bytes)
        if ctx.config is not None:
            # The run log is kept forever: secrets must not reach it through an error
            # message or a rendered template field either (XComs are the task's data).
            masker = ctx.config.state.masker
            outcome = dataclasses.replace(
                outcome,
                error=masker.mask(outcome.error) if outcome.error else outcome.error,
                reason=masker.mask(outcome.reason) if outcome.reason else outcome.reason,
                rendered_fields=masker.mask_deep(dict(outcome.rendered_fields)),
            )
        data = final_report(outcome, item, end_date=end_date, executor_id=ctx.executor_id)
        if isinstance(data, TaskAttemptFailed):
            telemetry.set_error(data.error)  # the executor's span, when tracing is on
        envelope = _envelope(
            ctx,
            data,
            kind=data.type,
            item=item,
            causation_id=work_event_id,
            sequence=1,
            time=end_date,
        )
        if logs is not None:
            logs.write("system", _final_log_line(data))
            # Logs and report travel in parallel; both are acknowledged before we return.
            await asyncio.gather(
                logs.close(),
                send_until_acked(ctx.producer, ctx.runs_topic, envelope, traceparent),
            )
        else:
            await send_until_acked(ctx.producer, ctx.runs_topic, envelope, traceparent)
        metrics.attempt_finished(data.type, item.dag_id, item.queue)
        return AttemptEnd.REPORTED

    # 1. The DAG version (its source code). Usually cached; otherwise wait for it.
    version = ctx.cache.version(item.version_id)
    if version is None:
        getter = asyncio.ensure_future(
            ctx.cache.wait_for(item.version_id, timeout=ctx.version_timeout)
        )
        aborted = asyncio.ensure_future(handle._aborted.wait())
        await asyncio.wait({getter, aborted}, return_when=asyncio.FIRST_COMPLETED)
        aborted.cancel()
        if not getter.done():
            getter.cancel()
            if handle.cancel_state is not None and handle.abort_reason is not None:
                outcome = cancelled_outcome(handle.cancel_state, handle.abort_reason)
                return await finish(outcome, None)
            return AttemptEnd.ABANDONED
        version = getter.result()
        if version is None:
            error = (
                f"DAG version {item.version_id!r} of DAG {item.dag_id!r} is unknown to "
                f"this executor: it did not appear on the DAG topic within "
                f"{ctx.version_timeout:g} s"
            )
            handle.poison = error
            return await finish(
                Outcome("failed", error=error, error_type="UnknownDagVersion", retryable=False),
                None,
            )
    if handle.cancel_state is not None and handle.abort_reason is not None:
        # Cancelled before it started: end it in the log, never run it.
        return await finish(cancelled_outcome(handle.cancel_state, handle.abort_reason), None)
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
        mask=ctx.config.mask if ctx.config is not None else None,
    )
    request = runner_payload(item, version, xcom_max_bytes=ctx.xcom_max_bytes)
    # Extensions of the request (variables and connections from the config cache) go here.
    if ctx.config is not None:
        request.update(ctx.config.request_fields())
    # A short-lived read-only API token for this attempt (ExternalTaskSensor).
    if ctx.task_api is not None:
        request.update(ctx.task_api.request_fields(item))
    # The task process's span nests under the executor's (tracing on: see sdk.tracing).
    if (traceparent_now := telemetry.current_traceparent()) is not None:
        request["traceparent"] = traceparent_now
    # The child gets its request (and so runs the task) only once its start is
    # acknowledged: a task never runs without its attempt in the run log, even when this
    # executor is SIGKILLed between the fork and the ack (its work item is redelivered
    # and would otherwise run a second time under the same try number).
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    process = TaskProcess(
        request,
        on_line=logs.write,
        argv=ctx.runner_argv,
        fork_server=ctx.fork_server,
        memory_limit_bytes=ctx.memory_limit_bytes,
        gate=gate,
        warm=ctx.warm_dags,
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
    if handle.abort_reason is not None:  # aborted or cancelled while the child started
        if handle.cancel_state is not None:
            process.cancel(handle.abort_reason, handle._cancel_grace)
        else:
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

    async def send_started() -> None:
        await send_until_acked(ctx.producer, ctx.runs_topic, started_env, traceparent)
        metrics.attempt_started(item.dag_id, item.queue)
        # From here on the run log knows the attempt: if this executor dies, the zombie
        # detector retries it, so the work item may be committed (never run twice).
        handle.mark_started()
        gate.set_result(None)

    started_sent = asyncio.ensure_future(send_started())
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
    metrics.attempt_finished("TaskAttemptFailed", item.dag_id, item.queue)
