"""Tracing inside the task process: ``from ledgerflow.sdk import tracer``.

::

    from ledgerflow.sdk import task, tracer

    @task
    def load():
        with tracer.start_as_current_span("load rows") as span:
            span.set_attribute("rows", 42)

``tracer`` is an OpenTelemetry tracer; plain ``opentelemetry.trace.get_tracer(...)``
works the same. When the executor traces (the standard ``OTEL_*`` variables are set for
it, and so for its task processes), the runner sets up a tracer provider in the task
process from the same variables, runs the attempt inside a ``run <task_id>`` span under
the executor's span (the request's ``traceparent``), and flushes the spans before the
process exits: the task's own spans land under its attempt. Otherwise ``tracer`` hands
out no-op spans.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from opentelemetry import trace

tracer = trace.get_tracer("ledgerflow.task")


def traced_execution(
    request: dict[str, Any], execute: Callable[[dict[str, Any]], dict[str, Any]]
) -> dict[str, Any]:
    """``execute(request)`` inside the task process's span, flushed before returning."""
    from ledgerflow.common import telemetry

    if not telemetry.configure_tracing("ledgerflow-task"):
        return execute(request)
    dag_id, run_id = str(request.get("dag_id")), str(request.get("run_id"))
    task_id = str(request.get("task_id"))
    attrs: dict[str, Any] = {
        "dag_id": dag_id,
        "run_id": run_id,
        "task_id": task_id,
        "map_index": int(request.get("map_index", -1)),
        "try_number": int(request.get("try_number", 1)),
        "process.pid": os.getpid(),
    }
    try:
        with telemetry.span(
            f"run {task_id}",
            context=telemetry.context_from_traceparent(str(request["traceparent"])),
            attributes=attrs,
        ) as current:
            outcome = execute(request)
            status = str(outcome.get("status"))
            current.set_attribute("state", status)
            if status == "failed":
                error = f"{outcome.get('error_type')}: {outcome.get('error')}"
                telemetry.set_error(error)
        return outcome
    finally:
        telemetry.flush()


__all__ = ["traced_execution", "tracer"]
