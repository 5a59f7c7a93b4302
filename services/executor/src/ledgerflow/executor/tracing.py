"""The executor's span: one per work item it runs, under the attempt's derived span.

``execute <task_id>`` (kind CONSUMER, with the messaging semantic conventions of the
work item's Kafka record) lasts from taking the work item to the acknowledged final
report. It is current while the attempt runs, so the request handed to the task
process carries its ``traceparent`` and the task process's span nests under it
(:mod:`ledgerflow.sdk.tracing`). With tracing off, :func:`traced_attempt` hands the
coroutine back untouched.
"""

from __future__ import annotations

import socket
from collections.abc import Coroutine
from typing import Any, TypeVar

from ledgerflow.common import telemetry
from ledgerflow.common.events import RunTaskAttempt

T = TypeVar("T")


def traced_attempt(
    coro: Coroutine[Any, Any, T],
    item: RunTaskAttempt,
    record: Any,
    *,
    executor_id: str,
    group: str,
) -> Coroutine[Any, Any, T]:
    """``coro`` (running one attempt), inside the executor's span when tracing is on."""
    if not telemetry.tracing_enabled():
        return coro
    return _traced(coro, item, record, executor_id=executor_id, group=group)


async def _traced(
    coro: Coroutine[Any, Any, T],
    item: RunTaskAttempt,
    record: Any,
    *,
    executor_id: str,
    group: str,
) -> T:
    ids = (item.dag_id, item.run_id, item.task_id, item.map_index, item.try_number)
    attrs: dict[str, Any] = {
        **telemetry.task_attributes(*ids),
        "queue": item.queue,
        "executor_id": executor_id,
        "host.name": socket.gethostname(),
        **(telemetry.kafka_attributes(record, group=group) if record is not None else {}),
    }
    with telemetry.span(
        f"execute {item.task_id}",
        context=telemetry.attempt_context(*ids),
        kind=telemetry.SpanKind.CONSUMER,
        attributes=attrs,
    ):
        return await coro


__all__ = ["traced_attempt"]
