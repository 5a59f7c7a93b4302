"""Tracing helpers: configuration from OTEL_*, derived ids, spans with given ids and times."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from ledgerflow.common import telemetry
from ledgerflow.common.events import (
    RunTaskAttempt,
    TaskAttemptStarted,
    TriggerDagRun,
    make_envelope,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """Tracing on for this test only, into memory (the process's global provider is
    left alone)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(id_generator=telemetry._derived_ids())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(telemetry, "_enabled", True)
    monkeypatch.setattr(telemetry, "_provider", provider)
    monkeypatch.setattr(telemetry, "_tracer", provider.get_tracer("test"))
    yield exporter
    provider.shutdown()


@pytest.mark.parametrize(
    ("env", "on"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, False),
        ({"OTEL_SDK_DISABLED": "false", "OTEL_TRACES_EXPORTER": "otlp"}, True),
    ],
)
def test_tracing_is_off_unless_the_otel_variables_ask(env: dict[str, str], on: bool) -> None:
    assert telemetry.tracing_configured(env) is on


def test_exporter_follows_the_protocol_variable() -> None:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Http

    assert isinstance(telemetry._make_exporter("otlp", {}), Http)  # the spec's default
    grpc = {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    assert isinstance(telemetry._make_exporter("otlp", grpc), Grpc)
    traces_http = {**grpc, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}
    assert isinstance(telemetry._make_exporter("otlp", traces_http), Http)
    with pytest.raises(ValueError, match="http/json"):
        telemetry._make_exporter("otlp", {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})
    with pytest.raises(ValueError, match="zipkin"):
        telemetry._make_exporter("zipkin", {})


def test_off_costs_nothing_and_does_nothing() -> None:
    assert not telemetry.tracing_enabled()
    assert telemetry.current_traceparent() is None
    with telemetry.span("x") as s:
        assert s is None
    telemetry.record_span(
        "x", trace_id=1, span_id=2, parent_span_id=None, start=T0, end=T0
    )  # no provider: nothing to fail


def test_ids_are_derived_from_the_run_and_attempt() -> None:
    a = telemetry.run_trace_id("d", "r")
    assert a == telemetry.run_trace_id("d", "r") and a != telemetry.run_trace_id("d", "r2")
    assert 0 < a < 2**128
    s1 = telemetry.attempt_span_id("d", "r", "t", -1, 1)
    assert s1 != telemetry.attempt_span_id("d", "r", "t", -1, 2)
    assert s1 != telemetry.attempt_span_id("d", "r", "t", 0, 1)
    assert s1 != telemetry.run_span_id("d", "r")
    assert 0 < s1 < 2**64


def _env(data, *, id: str = "e1"):  # noqa: A002
    return make_envelope(
        data, id=id, source="test", time=T0, aggregate_key=data.dag_id, correlation_id=None
    )


def test_headers_point_at_the_attempt_or_run_span() -> None:
    trace_hex = f"{telemetry.run_trace_id('d', 'r'):032x}"
    work = RunTaskAttempt(
        dag_id="d", run_id="r", task_id="t", try_number=2, version_id="v", queue="default"
    )
    attempt = f"{telemetry.attempt_span_id('d', 'r', 't', -1, 2):016x}"
    assert telemetry.envelope_traceparent(_env(work)) == f"00-{trace_hex}-{attempt}-01"
    started = TaskAttemptStarted(
        dag_id="d",
        run_id="r",
        task_id="t",
        try_number=2,
        start_date=T0,
        hostname="h",
        executor_id="x",
    )
    assert telemetry.envelope_traceparent(_env(started)) == f"00-{trace_hex}-{attempt}-01"
    trigger = TriggerDagRun(dag_id="d", run_id="r")
    run_span = f"{telemetry.run_span_id('d', 'r'):016x}"
    assert telemetry.envelope_traceparent(_env(trigger)) == f"00-{trace_hex}-{run_span}-01"


def test_record_span_takes_the_given_ids_parent_and_times(spans: InMemorySpanExporter) -> None:
    trace_id = telemetry.run_trace_id("d", "r")
    run_span = telemetry.run_span_id("d", "r")
    attempt = telemetry.attempt_span_id("d", "r", "t", -1, 1)
    # The child first: its parent need not be exported yet.
    telemetry.record_span(
        "task t",
        trace_id=trace_id,
        span_id=attempt,
        parent_span_id=run_span,
        start=T0 + timedelta(seconds=1),
        end=T0 + timedelta(seconds=2),
        attributes={"try_number": 1},
        error="RuntimeError: boom",
    )
    telemetry.record_span(
        "dag_run d",
        trace_id=trace_id,
        span_id=run_span,
        parent_span_id=None,
        start=T0,
        end=T0 + timedelta(seconds=3),
    )
    child, root = spans.get_finished_spans()
    assert (child.context.trace_id, child.context.span_id) == (trace_id, attempt)
    assert child.parent is not None and child.parent.span_id == run_span
    assert child.status.status_code is StatusCode.ERROR
    assert child.status.description == "RuntimeError: boom"
    assert child.start_time == int((T0 + timedelta(seconds=1)).timestamp() * 1e9)
    assert child.attributes == {"try_number": 1}
    assert (root.context.trace_id, root.context.span_id, root.parent) == (trace_id, run_span, None)
    assert root.end_time - root.start_time == 3_000_000_000
    # Spans started normally afterwards get random ids again.
    with telemetry.span("live", context=telemetry.run_context("d", "r"), kind=SpanKind.CONSUMER):
        tp = telemetry.current_traceparent()
    live = spans.get_finished_spans()[-1]
    assert live.context.span_id not in (run_span, attempt)
    assert live.parent is not None and live.parent.span_id == run_span
    assert tp == telemetry.format_traceparent(trace_id, live.context.span_id)


def test_headers_context_round_trip() -> None:
    tp = telemetry.format_traceparent(5, 7)
    ctx = telemetry.context_from_headers([("traceparent", tp.encode()), ("ce_id", b"x")])
    from opentelemetry import trace

    sc = trace.get_current_span(ctx).get_span_context()
    assert (sc.trace_id, sc.span_id, sc.is_remote) == (5, 7, True)
    assert (
        not trace.get_current_span(telemetry.context_from_headers(None)).get_span_context().is_valid
    )


def test_fork_server_preloads_the_configured_exporter_only() -> None:
    assert telemetry.tracing_modules({}) == ()
    grpc = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    assert telemetry.tracing_modules(grpc)[-1].endswith(".proto.grpc.trace_exporter")
    http = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}
    assert telemetry.tracing_modules(http)[-1].endswith(".proto.http.trace_exporter")
    console = {"OTEL_TRACES_EXPORTER": "console"}
    assert not any("exporter" in m for m in telemetry.tracing_modules(console))
    import importlib

    for name in telemetry.tracing_modules(grpc) + telemetry.tracing_modules(http):
        importlib.import_module(name)
