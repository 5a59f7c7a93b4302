"""Metrics through the OpenTelemetry SDK: Prometheus ``/metrics`` on every service, OTLP push.

:func:`configure_metrics` (called once per process by the CLI's service runner) installs
a ``MeterProvider`` with

- a Prometheus reader: :func:`render_prometheus` is served at ``/metrics`` by the probe
  server (scheduler, executor, projector) and by the api and ui apps;
- a periodic OTLP reader when ``OTEL_METRICS_EXPORTER`` names ``otlp`` (gRPC or HTTP by
  ``OTEL_EXPORTER_OTLP_METRICS_PROTOCOL``/``OTEL_EXPORTER_OTLP_PROTOCOL``; endpoint,
  headers and interval from the other standard ``OTEL_*`` variables).

Instruments live on :data:`M`, built from the global meter provider's proxy, so recording
costs nothing but a no-op call in a process that never configured metrics (unit tests,
the CLI). The services record where the facts already are: the executor when a report
is acknowledged, the scheduler when it decides (:func:`observe_decision`), the producer
when it dead-letters. Gauges (consumer lag, projector lag, slots) are observed: their
callbacks read numbers the services keep anyway or that :class:`ConsumerLag` samples in
the background, never anything on the hot path.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics as otel_metrics
from opentelemetry.metrics import CallbackOptions, Meter, Observation

if TYPE_CHECKING:
    from ledgerflow.common.core import DagState, Decision
    from ledgerflow.common.events import Envelope

log = logging.getLogger(__name__)

METER_NAME = "ledgerflow"
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Seconds. Hops are milliseconds on a quiet system and seconds under a backlog.
DELAY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    300.0,
)  # fmt: skip
RUN_BUCKETS = (
    0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0, 4 * 3600.0,
    12 * 3600.0, 24 * 3600.0,
)  # fmt: skip


class Instruments:
    """Every ledgerflow instrument, created from one meter."""

    def __init__(self, meter: Meter) -> None:
        self.meter = meter
        self.attempts_started = meter.create_counter(
            "ledgerflow.task.attempts.started",
            unit="{attempt}",
            description="Task attempts an executor started (its start acknowledged)",
        )
        self.attempts_succeeded = meter.create_counter(
            "ledgerflow.task.attempts.succeeded",
            unit="{attempt}",
            description="Task attempts reported successful",
        )
        self.attempts_failed = meter.create_counter(
            "ledgerflow.task.attempts.failed",
            unit="{attempt}",
            description="Task attempts reported failed (retried or not)",
        )
        self.upstream_to_queued = meter.create_histogram(
            "ledgerflow.scheduler.upstream_to_queued",
            unit="s",
            description="From the last upstream task's end to the task's first attempt queued",
            explicit_bucket_boundaries_advisory=DELAY_BUCKETS,
        )
        self.queued_to_running = meter.create_histogram(
            "ledgerflow.scheduler.queued_to_running",
            unit="s",
            description="From an attempt queued to its start on an executor",
            explicit_bucket_boundaries_advisory=DELAY_BUCKETS,
        )
        self.first_task_delay = meter.create_histogram(
            "ledgerflow.dagrun.first_task_scheduling_delay",
            unit="s",
            description="From a run queued to its first task running (Airflow's metric)",
            explicit_bucket_boundaries_advisory=DELAY_BUCKETS,
        )
        self.run_duration = meter.create_histogram(
            "ledgerflow.dagrun.duration",
            unit="s",
            description="From a run starting (or queued) to its final state",
            explicit_bucket_boundaries_advisory=RUN_BUCKETS,
        )
        self.dead_letters = meter.create_counter(
            "ledgerflow.dead_letters",
            unit="{message}",
            description="Messages set aside on the dead-letter topic, by consumer and topic",
        )
        meter.create_observable_gauge(
            "ledgerflow.kafka.consumer.lag",
            callbacks=[_observe_consumer_lag],
            unit="{message}",
            description="Messages on a topic past the group's consumed position (per process)",
        )
        meter.create_observable_gauge(
            "ledgerflow.projector.lag.events",
            callbacks=[_observe_projector_events],
            unit="{event}",
            description="Events on the event topics the projection has not stored yet",
        )
        meter.create_observable_gauge(
            "ledgerflow.projector.lag.seconds",
            callbacks=[_observe_projector_seconds],
            unit="s",
            description="Age of the last projected event while the projector is behind; 0 when caught up",
        )
        meter.create_observable_gauge(
            "ledgerflow.executor.slots.used",
            callbacks=[_observe_slots_used],
            unit="{slot}",
            description="Attempts running on this executor",
        )
        meter.create_observable_gauge(
            "ledgerflow.executor.slots.total",
            callbacks=[_observe_slots_total],
            unit="{slot}",
            description="Attempts this executor may run at once (--slots)",
        )


# ---------------------------------------------------------------------------- registries
# What the observable gauges read. Written by the event loop, read by the collection
# (the loop on a /metrics scrape, the OTLP reader's thread): plain values behind a lock.
_lock = threading.Lock()
_lag_sources: set[ConsumerLag] = set()
_slot_sources: dict[int, tuple[str, Callable[[], int], int]] = {}
_projector: dict[str, float] = {}
_slot_keys = itertools.count()


def _observe_consumer_lag(options: CallbackOptions) -> Iterable[Observation]:
    with _lock:
        sources = list(_lag_sources)
    for source in sources:
        for topic, lag in source.by_topic().items():
            yield Observation(lag, {"topic": topic, "group": source.group})


def _observe_projector_events(options: CallbackOptions) -> Iterable[Observation]:
    with _lock:
        behind = _projector.get("events")
    if behind is not None:
        yield Observation(behind)


def _observe_projector_seconds(options: CallbackOptions) -> Iterable[Observation]:
    with _lock:
        behind, last = _projector.get("events"), _projector.get("last_event_time")
    if behind is None:
        return
    seconds = max(0.0, time.time() - last) if behind > 0 and last is not None else 0.0
    yield Observation(seconds)


def _observe_slots_used(options: CallbackOptions) -> Iterable[Observation]:
    with _lock:
        sources = list(_slot_sources.values())
    for queue, used, _total in sources:
        with contextlib.suppress(Exception):
            yield Observation(used(), {"queue": queue})


def _observe_slots_total(options: CallbackOptions) -> Iterable[Observation]:
    with _lock:
        sources = list(_slot_sources.values())
    for queue, _used, total in sources:
        yield Observation(total, {"queue": queue})


M = Instruments(otel_metrics.get_meter(METER_NAME))
"""The process's instruments (no-ops until a provider is configured)."""


@contextlib.contextmanager
def use_instruments(instruments: Instruments) -> Iterator[Instruments]:
    """Record into ``instruments`` (tests: a meter of their own provider) for a while."""
    global M
    previous, M = M, instruments
    try:
        yield instruments
    finally:
        M = previous


# ---------------------------------------------------------------------------- recording
_attrs_cache: dict[tuple[str, str], Mapping[str, str]] = {}
_ATTRS_CACHE_MAX = 10_000


def _dag_queue(dag_id: str, queue: str) -> Mapping[str, str]:
    """The attribute mapping for ``(dag_id, queue)``, built once per pair."""
    key = (dag_id, queue)
    attrs = _attrs_cache.get(key)
    if attrs is None:
        if len(_attrs_cache) >= _ATTRS_CACHE_MAX:
            _attrs_cache.clear()
        attrs = _attrs_cache[key] = {"dag_id": dag_id, "queue": queue}
    return attrs


def attempt_started(dag_id: str, queue: str) -> None:
    M.attempts_started.add(1, _dag_queue(dag_id, queue))


def attempt_finished(report_type: str, dag_id: str, queue: str) -> None:
    """Count a final report by its event type (skips and reschedules are neither)."""
    if report_type == "TaskAttemptSucceeded":
        M.attempts_succeeded.add(1, _dag_queue(dag_id, queue))
    elif report_type == "TaskAttemptFailed":
        M.attempts_failed.add(1, _dag_queue(dag_id, queue))


def dead_lettered(consumer: str, topic: str) -> None:
    M.dead_letters.add(1, {"source": consumer, "topic": topic})


def _seconds(later: datetime, earlier: datetime | None) -> float | None:
    if earlier is None:
        return None
    return max(0.0, (later - earlier).total_seconds())


class DecisionObserver:
    """Scheduling delays and run durations from what the scheduler decides.

    Called with every decision (:meth:`observe`); looks only at the events that carry a
    measurement (an attempt started, a first attempt queued, a run finished), so a
    decision without them costs one ``type`` check per event. ``_first_started`` holds
    the runs whose first task already ran (dropped when the run finishes), so the first
    task scheduling delay is recorded once per run.
    """

    def __init__(self) -> None:
        self._first_started: set[tuple[str, str]] = set()
        self._upstreams: dict[str, dict[str, tuple[str, ...]]] = {}

    def observe(
        self, inbound: Envelope | Any, decision: Decision, catalog: Any, before: DagState
    ) -> None:
        """Measure what ``decision`` (decided on ``before`` for ``inbound``) tells."""
        data = getattr(inbound, "data", None)
        if data is not None and data.type == "TaskAttemptStarted":
            self._started(data, decision, before)
        for env in decision.events:
            kind = env.data.type
            if kind == "TaskInstanceQueued":
                self._queued(env.data, decision, catalog)
            elif kind in ("DagRunSucceeded", "DagRunFailed"):
                self._run_finished(env.data, decision)

    def _started(self, data: Any, decision: Decision, before: DagState) -> None:
        old_run = before.runs.get(data.run_id)
        run = decision.state.runs.get(data.run_id)
        if run is None or old_run is None:
            return
        ti = old_run.tasks.get((data.task_id, data.map_index))
        if ti is None or ti.state != "queued" or ti.try_number != data.try_number:
            return  # a redelivered or stale report: measured the first time
        attrs = {"dag_id": data.dag_id}
        waited = _seconds(data.start_date, ti.queued_when)
        if waited is not None:
            M.queued_to_running.record(waited, attrs)
        key = (data.dag_id, data.run_id)
        if key not in self._first_started and run.finished_instances == 0:
            if len(self._first_started) >= 100_000:  # runs deleted before they finished
                self._first_started.clear()
            self._first_started.add(key)
            first = _seconds(data.start_date, run.queued_at)
            if first is not None:
                M.first_task_delay.record(first, attrs)

    def _queued(self, data: Any, decision: Decision, catalog: Any) -> None:
        if data.try_number != 1:
            return  # a retry waits for its retry delay, not for its upstreams
        run = decision.state.runs.get(data.run_id)
        if run is None:
            return
        upstreams = self._upstreams.get(run.version_id)
        if upstreams is None:
            dag = catalog.get(run.version_id)
            if dag is None:
                return
            if len(self._upstreams) >= 1000:
                self._upstreams.clear()
            upstreams = self._upstreams[run.version_id] = {
                t.task_id: t.upstream_task_ids for t in dag.tasks
            }
        done: datetime | None = None
        for upstream in upstreams.get(data.task_id, ()):
            ti = run.tasks.get((upstream, data.map_index)) or run.tasks.get((upstream, -1))
            if ti is not None and ti.end_date is not None and (done is None or ti.end_date > done):
                done = ti.end_date
        waited = _seconds(data.queued_when, done)
        if waited is not None:
            M.upstream_to_queued.record(waited, {"dag_id": data.dag_id})

    def _run_finished(self, data: Any, decision: Decision) -> None:
        self._first_started.discard((data.dag_id, data.run_id))
        run = decision.state.runs.get(data.run_id)
        if run is None:
            return
        took = _seconds(data.end_date, run.start_date or run.queued_at)
        if took is not None:
            state = "success" if data.type == "DagRunSucceeded" else "failed"
            M.run_duration.record(took, {"dag_id": data.dag_id, "state": state})


# ---------------------------------------------------------------------------- gauges
class ConsumerLag:
    """Samples the lag of one consumer's partitions for ``ledgerflow.kafka.consumer.lag``.

    Lag of a partition = its end offset - the consumed offset, where "consumed" is what
    ``consumed(tp)`` says (the executor: its commit point; the projector: the offset
    stored in Postgres) or else the consumer's position. End offsets are asked of the
    broker every ``interval`` seconds in the background (and on every ``/metrics``
    scrape), never on the hot path; a paused consumer (executor slots full) still
    learns them. Summed over a group's processes it is the group's lag, the number
    KEDA's Kafka scaler scales on.
    """

    def __init__(
        self,
        consumer: Any,
        group: str,
        *,
        consumed: Callable[[Any], int | None] | None = None,
        partitions: Callable[[], Iterable[Any]] | None = None,
        interval: float = 5.0,
    ) -> None:
        self.consumer = consumer
        self.group = group
        self._consumed = consumed
        self._partitions = partitions
        self.interval = interval
        self._lag: dict[Any, int] = {}
        self._task: asyncio.Task[None] | None = None

    def by_topic(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for tp, lag in list(self._lag.items()):
            totals[tp.topic] = totals.get(tp.topic, 0) + lag
        return totals

    def total(self) -> int:
        return sum(self._lag.values())

    async def refresh(self) -> None:
        tps = list(self._partitions() if self._partitions else self.consumer.assignment())
        if not tps:
            self._lag = {}
            return
        ends = await self.consumer.end_offsets(tps)
        lag: dict[Any, int] = {}
        for tp in tps:
            end = ends.get(tp)
            if end is None:
                continue
            at = self._consumed(tp) if self._consumed is not None else None
            if at is None:
                try:
                    at = await self.consumer.position(tp)
                except Exception:  # revoked meanwhile
                    continue
            lag[tp] = max(0, end - at)
        self._lag = lag

    def start(self) -> ConsumerLag:
        with _lock:
            _lag_sources.add(self)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())
        return self

    async def stop(self) -> None:
        with _lock:
            _lag_sources.discard(self)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker is away: keep the last values
                log.debug("consumer lag of %s: %r", self.group, exc)
            await asyncio.sleep(self.interval)


class ProjectorLag(ConsumerLag):
    """The projector's lag: consumer lag plus ``ledgerflow.projector.lag.*``."""

    async def refresh(self) -> None:
        await super().refresh()
        with _lock:
            _projector["events"] = float(self.total())

    async def stop(self) -> None:
        await super().stop()
        with _lock:
            _projector.clear()


def projected(last_event_time: datetime | None) -> None:
    """The projector stored a batch whose last event happened at ``last_event_time``."""
    if last_event_time is not None:
        _projector["last_event_time"] = last_event_time.timestamp()


def watch_slots(queue: str, used: Callable[[], int], total: int) -> Callable[[], None]:
    """Report an executor's slots; returns the function that stops reporting them."""
    key = next(_slot_keys)
    with _lock:
        _slot_sources[key] = (queue, used, total)

    def forget() -> None:
        with _lock:
            _slot_sources.pop(key, None)

    return forget


async def refresh_lag(timeout: float = 2.0) -> None:
    """Sample every consumer's lag now (a ``/metrics`` scrape wants fresh numbers)."""
    with _lock:
        sources = list(_lag_sources)
    if not sources:
        return
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await asyncio.gather(*(s.refresh() for s in sources), return_exceptions=True)


# ---------------------------------------------------------------------------- set-up
_configured: Any = None


def _exporters(environ: Mapping[str, str]) -> set[str]:
    raw = environ.get("OTEL_METRICS_EXPORTER", "")
    return {part.strip().lower() for part in raw.split(",") if part.strip()}


def _otlp_exporter(environ: Mapping[str, str]) -> Any:
    protocol = (
        environ.get("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL")
        or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter()
    if protocol in ("http/protobuf", "http"):
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
            OTLPMetricExporter as HttpExporter,
        )

        return HttpExporter()
    raise ValueError(
        f"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL={protocol!r}: use 'grpc' or 'http/protobuf'"
    )


def configure_metrics(service: str, *, environ: Mapping[str, str] | None = None) -> Any:
    """Install this process's ``MeterProvider`` (once; later calls return the first).

    Prometheus (``/metrics``) is always on; ``OTEL_METRICS_EXPORTER=otlp`` (or
    ``prometheus,otlp``) adds an OTLP push every ``OTEL_METRIC_EXPORT_INTERVAL`` ms, and
    ``console`` prints them. ``OTEL_SDK_DISABLED=true`` turns metrics off entirely.
    ``service.name`` is ``OTEL_SERVICE_NAME`` or ``ledgerflow-<service>``.
    """
    global _configured
    if _configured is not None:
        return _configured
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import (
        ConsoleMetricExporter,
        MetricReader,
        PeriodicExportingMetricReader,
    )
    from opentelemetry.sdk.resources import Resource

    exporters = _exporters(env)
    readers: list[MetricReader] = [PrometheusMetricReader(scope_info_enabled=False)]
    if "otlp" in exporters:
        readers.append(PeriodicExportingMetricReader(_otlp_exporter(env)))
    if "console" in exporters:
        readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter()))
    name = env.get("OTEL_SERVICE_NAME") or f"ledgerflow-{service}"
    resource = Resource.create({"service.name": name, "ledgerflow.service": service})
    provider = MeterProvider(metric_readers=readers, resource=resource)
    otel_metrics.set_meter_provider(provider)
    _configured = provider
    log.debug("metrics: prometheus%s", " + otlp" if "otlp" in exporters else "")
    return provider


def render_prometheus() -> bytes:
    """The Prometheus text exposition of this process's metrics (``/metrics``)."""
    from prometheus_client import REGISTRY, generate_latest

    return generate_latest(REGISTRY)


async def metrics_response() -> bytes:
    """Refresh the lag gauges, then render (what a ``/metrics`` handler returns)."""
    await refresh_lag()
    return render_prometheus()


__all__ = [
    "ConsumerLag",
    "DecisionObserver",
    "Instruments",
    "M",
    "PROMETHEUS_CONTENT_TYPE",
    "ProjectorLag",
    "attempt_finished",
    "attempt_started",
    "configure_metrics",
    "dead_lettered",
    "metrics_response",
    "projected",
    "refresh_lag",
    "render_prometheus",
    "use_instruments",
    "watch_slots",
]
