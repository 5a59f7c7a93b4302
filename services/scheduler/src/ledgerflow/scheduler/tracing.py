"""The scheduler's spans: the run's, each attempt's, and its decisions.

The scheduler owning a DAG sees every fact of its runs, so it writes the spans that
cover a run's whole life, once they are over, with explicit start and end times and
the ids :mod:`ledgerflow.common.telemetry` derives from the run:

- ``dag_run <dag_id>`` (the trace's root): from the trigger (``queued_at``) to the
  run's final fact (``DagRunSucceeded``/``DagRunFailed``/a marked state);
- ``task <task_id>`` per attempt, under the run: from queued to the attempt's final
  report (or its zombie verdict), with a ``queued`` child span for the queue wait and
  error status on a failed attempt;
- ``scheduler <Type>`` around deciding a command or an executor report, under the run.

Spans are written for what :func:`trace_decision` is given live, and, on replay after a
restart or rebalance, for the executor reports past the group's committed offset, which
no owner handled live (:func:`trace_replayed`); everything else replays silently, so
each span is exported once. A crash between handling a report and committing it can
repeat a span, with the same ids.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from ledgerflow.common import telemetry
from ledgerflow.common.core import DagState, Decision, Tick
from ledgerflow.common.core.state import Run, TaskInstance
from ledgerflow.common.events import (
    ClearTaskInstances,
    DagRunFailed,
    DagRunStateSet,
    DagRunSucceeded,
    Envelope,
    SetDagRunState,
    SetTaskInstanceState,
    TaskAttemptFailed,
    TaskAttemptRescheduled,
    TaskAttemptSkipped,
    TaskAttemptSucceeded,
    TaskAttemptZombie,
    TriggerDagRun,
)
from opentelemetry import trace

# The trace context of the record being decided (its Kafka headers), for the link.
_inbound_headers: ContextVar[Any] = ContextVar("ledgerflow_inbound_headers", default=None)

FINAL_REPORTS = (
    TaskAttemptSucceeded,
    TaskAttemptFailed,
    TaskAttemptSkipped,
    TaskAttemptRescheduled,
)
_LIVE_ATTEMPT_STATES = frozenset({"queued", "running"})
_DECISION_INBOUND = (
    TriggerDagRun,
    ClearTaskInstances,
    SetTaskInstanceState,
    SetDagRunState,
    *FINAL_REPORTS,
)


def note_inbound(record: Any) -> None:
    """Remember the consumed record whose envelope is decided next (live only)."""
    _inbound_headers.set((record.headers, record))


async def untraced_from(consumer: Any, partitions: list[Any]) -> dict[Any, int]:
    """Where, on each run-log partition, the previous owner stopped handling events live:
    the group's committed offset. Executor reports past it were folded by nobody live
    (they arrived while no scheduler owned the partition), so replay traces them
    (:func:`trace_replayed`). No commit yet (a new group): nothing is traced on replay."""
    found: dict[Any, int] = {}
    if consumer is None:
        return found
    for tp in partitions:
        try:
            async with asyncio.timeout(5.0):
                committed = await consumer.committed(tp)
        except Exception:  # tracing must never hold up a rebalance
            continue
        if committed is not None:
            found[tp] = committed
    return found


def trace_replayed(before: DagState, env: Envelope, after: DagState, *, catalog: Any) -> None:
    """Replay folded ``env``, an event no scheduler handled live: write the span of the
    attempt it ends, as the live owner would have."""
    data = env.data
    if telemetry.tracing_enabled() and isinstance(data, FINAL_REPORTS):
        error = None
        if isinstance(data, TaskAttemptFailed):
            error = f"{data.error_type}: {data.error}" if data.error_type else data.error
        _attempt_span(before, after, data, data.end_date, data.executor_id, error, catalog)


def trace_decision(
    before: DagState,
    inbound: Envelope | Tick,
    decision: Decision,
    *,
    catalog: Any,
    started: datetime,
) -> None:
    """Write the spans that ``inbound``, decided into ``decision``, completes."""
    if not telemetry.tracing_enabled():
        return
    noted = _inbound_headers.get()
    _inbound_headers.set(None)
    if isinstance(inbound, Envelope):
        data = inbound.data
        if isinstance(data, FINAL_REPORTS):
            error = None
            if isinstance(data, TaskAttemptFailed):
                error = f"{data.error_type}: {data.error}" if data.error_type else data.error
            _attempt_span(
                before, decision.state, data, data.end_date, data.executor_id, error, catalog
            )
        if isinstance(data, _DECISION_INBOUND):
            _decision_span(inbound, decision, started, noted)
    for env in decision.events:
        fact = env.data
        if isinstance(fact, TaskAttemptZombie):
            _attempt_span(
                before,
                decision.state,
                fact,
                fact.at,
                fact.executor_id,
                f"zombie: {fact.reason}",
                catalog,
            )
        elif isinstance(fact, DagRunSucceeded | DagRunFailed):
            reason = getattr(fact, "reason", None)
            error = (reason or "the run failed") if isinstance(fact, DagRunFailed) else None
            _run_span(decision.state, fact.run_id, fact.end_date, error)
        elif isinstance(fact, DagRunStateSet) and fact.state in ("success", "failed"):
            error = f"marked failed by {fact.set_by}" if fact.state == "failed" else None
            _run_span(decision.state, fact.run_id, fact.at, error)


def _queue_of(catalog: Any, run: Run, task_id: str) -> str | None:
    try:
        dag = catalog.get(run.version_id)
        return str(dag.task(task_id).queue) if dag is not None else None
    except (KeyError, AttributeError):
        return None


def _retries(catalog: Any, run: Run, task_id: str) -> int:
    try:
        dag = catalog.get(run.version_id)
        return int(dag.task(task_id).retries) if dag is not None else 0
    except (KeyError, AttributeError):
        return 0


def _attempt_state(ref: Any, after: TaskInstance | None, retries: int) -> str:
    """How the attempt ended, in Airflow's task instance states."""
    if isinstance(ref, TaskAttemptSucceeded):
        return "success"
    if isinstance(ref, TaskAttemptSkipped):
        return "skipped"
    if isinstance(ref, TaskAttemptRescheduled):
        return "up_for_reschedule"
    # Failed (or a zombie): retried if the instance is waiting for, or already has, a
    # next try.
    if after is not None and (
        after.try_number > ref.try_number or after.state in ("up_for_retry", "scheduled", "queued")
    ):
        return "up_for_retry"
    if after is not None and after.state == "attempt_failed":  # folded, not decided yet
        retryable = getattr(ref, "retryable", True)
        return "up_for_retry" if retryable and after.attempts <= retries else "failed"
    return "failed"


def _attempt_span(
    before: DagState,
    after_state: DagState,
    ref: Any,
    end: datetime,
    executor_id: str | None,
    error: str | None,
    catalog: Any,
) -> None:
    run = before.runs.get(ref.run_id)
    if run is None:
        return
    ti: TaskInstance | None = run.tasks.get((ref.task_id, ref.map_index))
    # Only the attempt the scheduler still waits for: a stale or repeated report, or one
    # for an instance cleared or marked meanwhile, ends no span.
    if ti is None or ti.try_number != ref.try_number or ti.state not in _LIVE_ATTEMPT_STATES:
        return
    after = after_state.runs.get(ref.run_id)
    after_ti = after.tasks.get(ti.key) if after is not None else None
    state = _attempt_state(ref, after_ti, _retries(catalog, run, ref.task_id))
    ids = (ref.dag_id, ref.run_id, ref.task_id, ref.map_index, ref.try_number)
    trace_id = telemetry.run_trace_id(ref.dag_id, ref.run_id)
    span_id = telemetry.attempt_span_id(*ids)
    start = ti.queued_when or ti.start_date or end
    attrs: dict[str, Any] = {
        **telemetry.task_attributes(*ids),
        "state": state,
        "ledgerflow.attempt.state": state,
    }
    queue = _queue_of(catalog, run, ref.task_id)
    if queue is not None:
        attrs["queue"] = queue
    if executor_id or ti.executor_id:
        attrs["executor_id"] = executor_id or ti.executor_id
    if ti.hostname:
        attrs["hostname"] = ti.hostname
    if ti.queued_when is not None and ti.start_date is not None:
        wait = max(0.0, (ti.start_date - ti.queued_when).total_seconds())
        attrs["ledgerflow.queue_wait_ms"] = round(wait * 1000, 3)
        telemetry.record_span(
            "queued",
            trace_id=trace_id,
            span_id=telemetry.queue_span_id(*ids),
            parent_span_id=span_id,
            start=ti.queued_when,
            end=ti.start_date,
            attributes={**telemetry.task_attributes(*ids), **({"queue": queue} if queue else {})},
        )
    name = f"task {ref.task_id}" + (f"[{ref.map_index}]" if ref.map_index >= 0 else "")
    telemetry.record_span(
        name,
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=telemetry.run_span_id(ref.dag_id, ref.run_id),
        start=start,
        end=end,
        attributes=attrs,
        error=error,
    )


def _run_span(state: DagState, run_id: str, end: datetime, error: str | None) -> None:
    run = state.runs.get(run_id)
    if run is None:
        return
    attrs: dict[str, Any] = {
        "dag_id": run.dag_id,
        "run_id": run.run_id,
        "run_type": run.run_type,
        "state": "failed" if error else "success",
        "ledgerflow.version_id": run.version_id,
    }
    if run.logical_date is not None:
        attrs["logical_date"] = run.logical_date.isoformat()
    if run.start_date is not None:
        attrs["start_date"] = run.start_date.isoformat()
    telemetry.record_span(
        f"dag_run {run.dag_id}",
        trace_id=telemetry.run_trace_id(run.dag_id, run.run_id),
        span_id=telemetry.run_span_id(run.dag_id, run.run_id),
        parent_span_id=None,
        start=run.queued_at,
        end=end,
        attributes=attrs,
        error=error,
    )


def _decision_span(inbound: Envelope, decision: Decision, started: datetime, noted: Any) -> None:
    data: Any = inbound.data
    run_ids = [data.run_id] if hasattr(data, "run_id") else list(getattr(data, "run_ids", ()))
    if len(run_ids) != 1 or not (decision.events or decision.work):
        return  # a repeat decides nothing, and is not traced again
    dag_id, run_id = inbound.aggregate_key, run_ids[0]
    attrs: dict[str, Any] = {
        "dag_id": dag_id,
        "run_id": run_id,
        "ledgerflow.inbound.type": data.type,
        "ledgerflow.inbound.id": inbound.id,
        "ledgerflow.decision.events": len(decision.events),
        "ledgerflow.decision.work_items": len(decision.work),
    }
    for name in ("task_id", "map_index", "try_number"):
        if hasattr(data, name):
            attrs[name] = getattr(data, name)
    trace_id = telemetry.run_trace_id(dag_id, run_id)
    links: list[telemetry.Link] = []
    if noted is not None:
        headers, record = noted
        attrs.update(telemetry.kafka_attributes(record, group="ledgerflow-scheduler"))
        sender = trace.get_current_span(telemetry.context_from_headers(headers))
        sc = sender.get_span_context()
        if sc.is_valid and sc.trace_id != trace_id:  # e.g. the API request that sent it
            links.append(telemetry.Link(sc))
    telemetry.record_span(
        f"scheduler {data.type}",
        trace_id=trace_id,
        span_id=telemetry.derived_span_id("decision", inbound.id),
        parent_span_id=telemetry.run_span_id(dag_id, run_id),
        start=started,
        end=datetime.now(UTC),
        attributes=attrs,
        links=links,
    )


__all__ = ["note_inbound", "trace_decision", "trace_replayed", "untraced_from"]
