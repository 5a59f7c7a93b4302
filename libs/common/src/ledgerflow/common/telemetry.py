"""OpenTelemetry tracing for ledgerflow: set-up from ``OTEL_*``, derived ids, Kafka headers.

An adapter (the core never imports it). Tracing is **off unless configured** with the
standard environment variables, and then every helper here returns at its first line:

- ``OTEL_SDK_DISABLED=true`` turns everything off;
- ``OTEL_TRACES_EXPORTER``: ``otlp`` (default once an endpoint is set), ``console`` or
  ``none``; with neither it nor ``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`` set, tracing is
  off;
- ``OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL``: ``grpc`` or ``http/protobuf`` (the default);
  endpoint, headers, timeout, compression, certificates: the exporters read their own
  ``OTEL_EXPORTER_OTLP_*`` variables;
- ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES`` (default service name
  ``ledgerflow-<service>``), ``OTEL_TRACES_SAMPLER[_ARG]``, ``OTEL_BSP_*``: as the SDK
  reads them.

One trace per DAG run, whatever process writes its spans and however often the
scheduler restarts: the trace id is a hash of ``(dag_id, run_id)`` and the span ids of
the run and of each attempt a hash of ``(run, task, map_index, try)``
(:func:`run_trace_id`, :func:`run_span_id`, :func:`attempt_span_id`). A span can thus
name its parent before (or without) the parent being exported; the run and attempt
spans are written with explicit start and end times once they are over
(:func:`record_span`). The ``traceparent`` Kafka header of run-log facts and work items
points at the run's or the attempt's span (:func:`envelope_traceparent`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger(__name__)

INSTRUMENTATION = "ledgerflow"
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_PROPAGATOR = TraceContextTextMapPropagator()

# Checked first by every helper: False costs one global lookup on the hot path.
_enabled = False
_provider: Any = None
_tracer: Any = None
# (trace id, span id) the next span must take (see _DerivedIds).
_forced_ids: ContextVar[tuple[int, int] | None] = ContextVar("ledgerflow_forced_ids", default=None)


# --------------------------------------------------------------------------- set-up
def tracing_configured(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the ``OTEL_*`` variables ask for traces (see the module docstring)."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    names = _exporter_names(env)
    if names is not None:
        return bool(names)
    return bool(
        env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )


def _exporter_names(env: Mapping[str, str]) -> list[str] | None:
    raw = env.get("OTEL_TRACES_EXPORTER")
    if raw is None or not raw.strip():
        return None
    return [n for n in (p.strip().lower() for p in raw.split(",")) if n and n != "none"]


def tracing_modules(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The modules a task process imports to trace (the SDK and the configured
    exporter), for a fork server to import once; none when tracing is off. Importing
    them starts no thread and opens no connection, so forking after it is safe."""
    env = os.environ if environ is None else environ
    if not tracing_configured(env):
        return ()
    modules = [
        "opentelemetry.sdk.trace",
        "opentelemetry.sdk.trace.export",
        "opentelemetry.sdk.resources",
    ]
    if "otlp" in (_exporter_names(env) or ["otlp"]):
        protocol = (
            env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or "http/protobuf"
        ).strip()
        kind = "grpc" if protocol == "grpc" else "http"
        modules.append(f"opentelemetry.exporter.otlp.proto.{kind}.trace_exporter")
    return tuple(modules)


def _make_exporter(name: str, env: Mapping[str, str]) -> Any:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name != "otlp":
        raise ValueError(
            f"OTEL_TRACES_EXPORTER={name!r} is not supported (use otlp, console or none)"
        )
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpExporter,
        )

        return HttpExporter()
    raise ValueError(
        f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported (use grpc or http/protobuf)"
    )


def configure_tracing(
    service_name: str,
    *,
    environ: Mapping[str, str] | None = None,
    exporter: Any = None,
) -> bool:
    """Install the process's tracer provider when ``OTEL_*`` asks for it (or ``exporter``
    is given, e.g. in a benchmark); returns whether tracing is on. Idempotent.

    ``service_name`` is the default ``service.name``; ``OTEL_SERVICE_NAME`` and
    ``OTEL_RESOURCE_ATTRIBUTES`` win over it.
    """
    global _enabled, _provider, _tracer
    if _enabled:
        return True
    env = os.environ if environ is None else environ
    if exporter is None and not tracing_configured(env):
        return False
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({})
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: service_name}))
    exporters = [exporter] if exporter is not None else []
    if exporter is None:
        for name in _exporter_names(env) or ["otlp"]:
            try:
                exporters.append(_make_exporter(name, env))
            except ValueError as exc:
                log.error("tracing: %s; no traces are exported through it", exc)
    if not exporters:
        return False
    provider = TracerProvider(resource=resource, id_generator=_derived_ids())
    for exp in exporters:
        provider.add_span_processor(BatchSpanProcessor(exp))
    trace.set_tracer_provider(provider)
    _provider = provider
    _tracer = provider.get_tracer(INSTRUMENTATION)
    _enabled = True
    log.debug("tracing on: service %s", resource.attributes.get(SERVICE_NAME))
    return True


def tracing_enabled() -> bool:
    return _enabled


def flush(timeout_ms: int = 5000) -> None:
    """Export what is buffered (a short-lived process calls this before it exits)."""
    if _enabled:
        _provider.force_flush(timeout_ms)


def shutdown() -> None:
    global _enabled
    if _enabled:
        _enabled = False
        _provider.shutdown()


def _derived_ids() -> Any:
    """Random ids, except for the span :func:`record_span` starts with derived ones."""
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    class DerivedIds(RandomIdGenerator):
        def generate_span_id(self) -> int:
            forced = _forced_ids.get()
            return forced[1] if forced is not None else super().generate_span_id()

        def generate_trace_id(self) -> int:
            forced = _forced_ids.get()
            return forced[0] if forced is not None else super().generate_trace_id()

    return DerivedIds()


# --------------------------------------------------------------------------- ids
def _hash(text: str, hex_digits: int) -> int:
    value = int(hashlib.sha256(text.encode()).hexdigest()[:hex_digits], 16)
    return value or 1  # an all-zero id is invalid in W3C trace context


def run_trace_id(dag_id: str, run_id: str) -> int:
    """The trace id of a DAG run (the same formula the Kafka headers always used)."""
    return _hash(f"trace:{dag_id}:{run_id}", 32)


def run_span_id(dag_id: str, run_id: str) -> int:
    return _hash(f"span:run:{dag_id}:{run_id}", 16)


def attempt_span_id(dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int) -> int:
    return _hash(f"span:attempt:{dag_id}:{run_id}:{task_id}:{map_index}:{try_number}", 16)


def queue_span_id(dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int) -> int:
    return _hash(f"span:queued:{dag_id}:{run_id}:{task_id}:{map_index}:{try_number}", 16)


def derived_span_id(kind: str, *parts: object) -> int:
    """A span id derived from what the span is about (the same after a restart)."""
    return _hash(":".join(["span", kind, *map(str, parts)]), 16)


def format_traceparent(trace_id: int, span_id: int, sampled: bool = True) -> str:
    return f"00-{trace_id:032x}-{span_id:016x}-{'01' if sampled else '00'}"


def envelope_traceparent(envelope: Any) -> str:
    """A ``traceparent`` for a message sent outside any span: the attempt's span for an
    attempt's messages, the run's span for a run's, else a trace of the DAG's own."""
    data = envelope.data
    dag_id = getattr(data, "dag_id", None) or envelope.aggregate_key
    run_id = getattr(data, "run_id", None)
    if isinstance(run_id, str):
        trace_id = run_trace_id(dag_id, run_id)
        try_number = getattr(data, "try_number", None)
        task_id = getattr(data, "task_id", None)
        if isinstance(task_id, str) and isinstance(try_number, int) and try_number > 0:
            span_id = attempt_span_id(dag_id, run_id, task_id, data.map_index, try_number)
        else:
            span_id = run_span_id(dag_id, run_id)
        return format_traceparent(trace_id, span_id)
    root = envelope.correlation_id or envelope.aggregate_key
    trace_id = _hash(f"trace:{envelope.aggregate_key}:{root}", 32)
    return format_traceparent(trace_id, _hash(f"span:{envelope.id}", 16))


def _remote(trace_id: int, span_id: int) -> otel_context.Context:
    parent = NonRecordingSpan(SpanContext(trace_id, span_id, is_remote=True, trace_flags=_SAMPLED))
    return trace.set_span_in_context(parent, otel_context.Context())


def run_context(dag_id: str, run_id: str) -> otel_context.Context:
    """A context whose parent is the run's span (exported or not yet)."""
    return _remote(run_trace_id(dag_id, run_id), run_span_id(dag_id, run_id))


def attempt_context(
    dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int
) -> otel_context.Context:
    """A context whose parent is the attempt's span (exported or not yet)."""
    return _remote(
        run_trace_id(dag_id, run_id),
        attempt_span_id(dag_id, run_id, task_id, map_index, try_number),
    )


# --------------------------------------------------------------------------- Kafka headers
def current_traceparent() -> str | None:
    """The ``traceparent`` of the span active now; None when tracing is off or no span
    is active (the caller then derives one from the message)."""
    if not _enabled:
        return None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


def context_from_headers(headers: Sequence[tuple[str, bytes]] | None) -> otel_context.Context:
    """The W3C trace context of a consumed record's headers (empty if it has none)."""
    carrier = {
        k: bytes(v).decode(errors="replace")
        for k, v in headers or ()
        if k in ("traceparent", "tracestate") and v
    }
    return _PROPAGATOR.extract(carrier, otel_context.Context())


def context_from_traceparent(traceparent: str | None) -> otel_context.Context:
    if not traceparent:
        return otel_context.Context()
    return _PROPAGATOR.extract({"traceparent": traceparent}, otel_context.Context())


def kafka_attributes(
    record: Any, *, operation: str = "process", group: str | None = None
) -> dict[str, Any]:
    """OpenTelemetry messaging semantic conventions for a consumed Kafka record."""
    attrs: dict[str, Any] = {
        "messaging.system": "kafka",
        "messaging.operation.type": operation,
        "messaging.operation.name": operation,
        "messaging.destination.name": str(record.topic),
        "messaging.destination.partition.id": str(record.partition),
        "messaging.kafka.offset": int(record.offset),
    }
    if record.key is not None:
        attrs["messaging.kafka.message.key"] = bytes(record.key).decode(errors="replace")
    if group:
        attrs["messaging.consumer.group.name"] = group
    return attrs


# --------------------------------------------------------------------------- spans
def _ns(value: datetime) -> int:
    return int(value.timestamp() * 1_000_000_000)


def record_span(
    name: str,
    *,
    trace_id: int,
    span_id: int,
    parent_span_id: int | None,
    start: datetime,
    end: datetime,
    attributes: Mapping[str, Any] | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    error: str | None = None,
    links: Sequence[Link] = (),
) -> None:
    """Export a finished span with the given ids and times (no-op when tracing is off)."""
    if not _enabled:
        return
    parent = (
        _remote(trace_id, parent_span_id) if parent_span_id is not None else otel_context.Context()
    )
    token = _forced_ids.set((trace_id, span_id))
    try:
        span = _tracer.start_span(
            name,
            context=parent,
            kind=kind,
            attributes=dict(attributes or {}),
            links=links,
            start_time=_ns(start),
        )
    finally:
        _forced_ids.reset(token)
    if error is not None:
        span.set_status(Status(StatusCode.ERROR, error[:1000]))
    span.end(end_time=max(_ns(end), _ns(start)))


@contextlib.contextmanager
def span(
    name: str,
    *,
    context: otel_context.Context | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, Any] | None = None,
    links: Sequence[Link] = (),
) -> Iterator[Any]:
    """A live span, made current; yields None (and does nothing) when tracing is off."""
    if not _enabled:
        yield None
        return
    with _tracer.start_as_current_span(
        name, context=context, kind=kind, attributes=dict(attributes or {}), links=links
    ) as current:
        yield current


def set_error(description: str) -> None:
    """Mark the current span as failed (no-op when tracing is off)."""
    if _enabled:
        trace.get_current_span().set_status(Status(StatusCode.ERROR, description[:1000]))


def task_attributes(
    dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int
) -> dict[str, Any]:
    """Airflow's span attribute names for a task instance (``airflow.task_instance.*``
    has no stable convention; these are the names Airflow's own traces use)."""
    return {
        "dag_id": dag_id,
        "run_id": run_id,
        "task_id": task_id,
        "map_index": map_index,
        "try_number": try_number,
    }


__all__ = [
    "Link",
    "SpanKind",
    "attempt_context",
    "attempt_span_id",
    "configure_tracing",
    "context_from_headers",
    "context_from_traceparent",
    "current_traceparent",
    "derived_span_id",
    "envelope_traceparent",
    "flush",
    "format_traceparent",
    "kafka_attributes",
    "queue_span_id",
    "record_span",
    "run_context",
    "run_span_id",
    "run_trace_id",
    "set_error",
    "shutdown",
    "span",
    "task_attributes",
    "tracing_configured",
    "tracing_enabled",
    "tracing_modules",
]
