"""Metrics: instruments register under their names, the scheduler's decisions become
scheduling-delay and run-duration histograms, and the Prometheus text shows them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from ledgerflow.common import metrics
from ledgerflow.common.metrics import (
    ConsumerLag,
    DecisionObserver,
    Instruments,
    use_instruments,
    watch_slots,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from .core_harness import Driver, make_dag


@pytest.fixture
def reader() -> Iterator[InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    with use_instruments(Instruments(provider.get_meter("test"))):
        yield reader
    provider.shutdown()


def points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    """Metric name -> its data points (of the last collection)."""
    data = reader.get_metrics_data()
    out: dict[str, list[Any]] = {}
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                out[m.name] = list(m.data.data_points)
    return out


def test_attempt_counters_by_dag_and_queue(reader: InMemoryMetricReader) -> None:
    metrics.attempt_started("etl", "default")
    metrics.attempt_started("etl", "default")
    metrics.attempt_finished("TaskAttemptSucceeded", "etl", "default")
    metrics.attempt_finished("TaskAttemptFailed", "etl", "gpu")
    metrics.attempt_finished("TaskAttemptSkipped", "etl", "default")  # neither
    metrics.dead_lettered("ledgerflow-projector", "p.runs")
    got = points(reader)
    started = got["ledgerflow.task.attempts.started"]
    assert [(p.value, dict(p.attributes)) for p in started] == [
        (2, {"dag_id": "etl", "queue": "default"})
    ]
    assert [p.value for p in got["ledgerflow.task.attempts.succeeded"]] == [1]
    failed = got["ledgerflow.task.attempts.failed"]
    assert [dict(p.attributes) for p in failed] == [{"dag_id": "etl", "queue": "gpu"}]
    dlq = got["ledgerflow.dead_letters"]
    assert [dict(p.attributes) for p in dlq] == [
        {"source": "ledgerflow-projector", "topic": "p.runs"}
    ]


def _observed_driver(observer: DecisionObserver, dag: Any) -> Driver:
    driver = Driver.of(dag)
    feed = driver.feed

    def observed(inbound: Any) -> Any:
        before = driver.state
        decision = feed(inbound)
        observer.observe(inbound, decision, driver.catalog, before)
        return decision

    driver.feed = observed  # type: ignore[method-assign]
    return driver


def test_decisions_become_delay_and_duration_histograms(reader: InMemoryMetricReader) -> None:
    observer = DecisionObserver()
    d = _observed_driver(observer, make_dag({"a": [], "b": ["a"]}))
    d.trigger()
    d.later(seconds=2).start("a")  # run queued -> first task running: 2 s
    # succeed() reports the start again (a redelivery: not measured twice), then the end;
    # b is queued at once (upstream done -> queued: 0 s).
    d.later(seconds=3).succeed("a")
    d.later(seconds=0.5).succeed("b")  # b queued -> running: 0.5 s
    got = points(reader)

    queued_to_running = got["ledgerflow.scheduler.queued_to_running"]
    assert sum(p.count for p in queued_to_running) == 2
    assert sum(p.sum for p in queued_to_running) == pytest.approx(2.0 + 0.5)
    first = got["ledgerflow.dagrun.first_task_scheduling_delay"]
    assert [(p.count, p.sum) for p in first] == [(1, pytest.approx(2.0))]  # once per run
    upstream = got["ledgerflow.scheduler.upstream_to_queued"]
    assert [(p.count, p.sum, dict(p.attributes)) for p in upstream] == [(1, 0.0, {"dag_id": "d"})]
    duration = got["ledgerflow.dagrun.duration"]
    assert [dict(p.attributes) for p in duration] == [{"dag_id": "d", "state": "success"}]
    assert duration[0].sum == pytest.approx(5.5, abs=2.01)  # from start (or queue) to end
    assert observer._first_started == set()  # forgotten once the run finished


def test_a_failed_run_is_measured_as_failed(reader: InMemoryMetricReader) -> None:
    d = _observed_driver(DecisionObserver(), make_dag({"a": []}))
    d.trigger()
    d.later(seconds=1).fail("a")
    duration = points(reader)["ledgerflow.dagrun.duration"]
    assert [dict(p.attributes)["state"] for p in duration] == ["failed"]


class _FakeConsumer:
    """Only what :class:`ConsumerLag` calls: assignment, end offsets, positions."""

    def __init__(self, ends: dict[Any, int], positions: dict[Any, int]) -> None:
        self.ends, self.positions = ends, positions

    def assignment(self) -> set[Any]:
        return set(self.ends)

    async def end_offsets(self, tps: list[Any]) -> dict[Any, int]:
        return {tp: self.ends[tp] for tp in tps}

    async def position(self, tp: Any) -> int:
        return self.positions[tp]


def test_lag_and_slot_gauges(reader: InMemoryMetricReader) -> None:
    from aiokafka import TopicPartition

    w0, w1 = TopicPartition("p.work.default", 0), TopicPartition("p.work.default", 1)
    consumer = _FakeConsumer({w0: 10, w1: 5}, {w0: 4, w1: 5})
    committed = {w0: 2}  # the executor's commit point, where it knows one

    async def sample() -> None:
        lag = ConsumerLag(consumer, "p-executor-default", consumed=committed.get).start()
        try:
            await metrics.refresh_lag()
            got = points(reader)
        finally:
            await lag.stop()
        gauge = got["ledgerflow.kafka.consumer.lag"]
        assert [(p.value, dict(p.attributes)) for p in gauge] == [
            (8, {"topic": "p.work.default", "group": "p-executor-default"})
        ]

    asyncio.run(sample())
    forget = watch_slots("default", lambda: 3, 4)
    try:
        got = points(reader)
        assert [p.value for p in got["ledgerflow.executor.slots.used"]] == [3]
        assert [p.value for p in got["ledgerflow.executor.slots.total"]] == [4]
    finally:
        forget()
    assert "ledgerflow.kafka.consumer.lag" not in points(reader)  # stopped: not reported


def test_prometheus_text_names() -> None:
    """The names Prometheus sees (what dashboards and the KEDA docs refer to)."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    provider = MeterProvider(
        metric_readers=[PrometheusMetricReader(registry=registry, scope_info_enabled=False)]
    )
    try:
        with use_instruments(Instruments(provider.get_meter("ledgerflow"))):
            metrics.attempt_started("etl", "default")
            metrics.M.queued_to_running.record(0.003, {"dag_id": "etl"})
            text = generate_latest(registry).decode()
    finally:
        provider.shutdown()
    assert 'ledgerflow_task_attempts_started_total{dag_id="etl",queue="default"} 1.0' in text
    assert 'ledgerflow_scheduler_queued_to_running_seconds_bucket{dag_id="etl",le="0.005"} 1.0' in (
        text
    )


def test_otlp_push_when_asked_for(tmp_path: Any) -> None:
    """``OTEL_METRICS_EXPORTER=otlp``: the standard variables alone make a process push its
    metrics over OTLP/HTTP (received here by a plain HTTP server, decoded as OTLP)."""
    import http.server
    import os
    import subprocess
    import sys
    import threading

    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )

    received: list[ExportMetricsServiceRequest] = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path == "/v1/metrics":
                received.append(ExportMetricsServiceRequest.FromString(body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    code = (
        "from ledgerflow.common import metrics\n"
        "provider = metrics.configure_metrics('executor')\n"
        "metrics.attempt_started('etl', 'default')\n"
        "provider.shutdown()\n"  # flushes the periodic reader
    )
    env = {
        **os.environ,
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{server.server_port}",
    }
    env.pop("OTEL_SDK_DISABLED", None)
    env.pop("OTEL_SERVICE_NAME", None)
    try:
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, timeout=60, cwd=tmp_path
        )
    finally:
        server.shutdown()
    assert done.returncode == 0, done.stderr.decode()
    names, services = set(), set()
    for request in received:
        for rm in request.resource_metrics:
            services |= {
                a.value.string_value for a in rm.resource.attributes if a.key == "service.name"
            }
            for sm in rm.scope_metrics:
                names |= {m.name for m in sm.metrics}
    assert "ledgerflow.task.attempts.started" in names
    assert services == {"ledgerflow-executor"}


async def test_the_ui_serves_metrics() -> None:
    import httpx
    from ledgerflow.common.settings import Settings
    from ledgerflow.ui.app import create_app

    app = create_app(Settings(api_url="http://api.internal:8081"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ui.test") as client:
            response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE" in response.text
