"""The scheduler's spans, from the pure core's decisions: a run with a retried attempt."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from ledgerflow.common import telemetry
from ledgerflow.common.core import Tick, decide, empty
from ledgerflow.common.dagmodel import SerializedDag, SerializedTask
from ledgerflow.common.events import (
    Envelope,
    RunTaskAttempt,
    TaskAttemptFailed,
    TaskAttemptStarted,
    TaskAttemptSucceeded,
    TriggerDagRun,
    make_envelope,
)
from ledgerflow.scheduler.tracing import trace_decision
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from tests.bench.core_fanout import T0, _report


class _Catalog:
    dag = SerializedDag(
        dag_id="d",
        fileloc="d.py",
        tasks=(
            SerializedTask(task_id="a", operator="PythonOperator", queue="q1"),
            SerializedTask(
                task_id="b",
                operator="PythonOperator",
                upstream_task_ids=("a",),
                retries=1,
                retry_delay_seconds=0,
            ),
        ),
    )

    def get(self, version_id: str) -> SerializedDag | None:
        return self.dag if version_id == "v1" else None

    def latest_version_id(self, dag_id: str) -> str | None:
        return "v1"


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(id_generator=telemetry._derived_ids())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(telemetry, "_enabled", True)
    monkeypatch.setattr(telemetry, "_provider", provider)
    monkeypatch.setattr(telemetry, "_tracer", provider.get_tracer("test"))
    yield exporter
    provider.shutdown()


def _run(catalog: _Catalog) -> None:
    """Drive run r1 of d to the end as scheduler and executor would: b fails once."""
    state, now = empty("d"), T0
    queue: list[Envelope | Tick] = [
        make_envelope(
            TriggerDagRun(dag_id="d", run_id="r1"),
            id="cmd-1",
            source="ledgerflow/api",
            time=T0,
            aggregate_key="d",
        )
    ]
    while queue:
        inbound = queue.pop(0)
        now += timedelta(seconds=1)
        before = state
        decision = decide(before, inbound, now=now, catalog=catalog)
        trace_decision(before, inbound, decision, catalog=catalog, started=now)
        # A redelivered copy decides nothing and writes no span.
        if isinstance(inbound, Envelope):
            again = decide(decision.state, inbound, now=now, catalog=catalog)
            trace_decision(decision.state, inbound, again, catalog=catalog, started=now)
        state = decision.state
        for w in decision.work:
            item = w.data
            assert isinstance(item, RunTaskAttempt)
            ref = {
                "dag_id": "d",
                "run_id": "r1",
                "task_id": item.task_id,
                "map_index": -1,
                "try_number": item.try_number,
            }
            at = now + timedelta(milliseconds=300)
            queue.append(
                _report(TaskAttemptStarted(**ref, start_date=at, hostname="h", executor_id="e"), at)
            )
            end = at + timedelta(milliseconds=200)
            if item.task_id == "b" and item.try_number == 1:
                report = TaskAttemptFailed(**ref, end_date=end, error="boom", executor_id="e")
            else:
                report = TaskAttemptSucceeded(**ref, end_date=end, executor_id="e")
            queue.append(_report(report, end))
        if not queue and decision.wake_at is not None:
            queue.append(Tick("d", full=False))
            now = max(now, decision.wake_at)
    assert state.runs["r1"].state == "success"


def test_one_trace_a_root_and_a_span_per_attempt(spans: InMemorySpanExporter) -> None:
    _run(_Catalog())
    finished = spans.get_finished_spans()
    trace_id = telemetry.run_trace_id("d", "r1")
    assert {s.context.trace_id for s in finished} == {trace_id}
    by_name: dict[str, list] = {}
    for s in finished:
        by_name.setdefault(s.name, []).append(s)

    (root,) = by_name["dag_run d"]
    assert root.parent is None
    assert root.context.span_id == telemetry.run_span_id("d", "r1")
    assert root.attributes["state"] == "success"
    assert root.start_time == int(T0.timestamp() * 1e9)  # the trigger's time (queued_at)

    attempts = {
        (s.attributes["task_id"], s.attributes["try_number"]): s
        for s in by_name["task a"] + by_name["task b"]
    }
    assert sorted(attempts) == [("a", 1), ("b", 1), ("b", 2)]
    for (task_id, try_number), s in attempts.items():
        assert s.parent.span_id == root.context.span_id
        assert s.context.span_id == telemetry.attempt_span_id("d", "r1", task_id, -1, try_number)
        assert root.start_time <= s.start_time < s.end_time <= root.end_time
        assert s.attributes["executor_id"] == "e"
    assert attempts[("a", 1)].attributes["queue"] == "q1"
    assert attempts[("b", 1)].attributes["queue"] == "default"
    failed = attempts[("b", 1)]
    assert failed.status.status_code is StatusCode.ERROR and failed.status.description == "boom"
    assert failed.attributes["state"] == "up_for_retry"
    assert attempts[("b", 2)].status.status_code is StatusCode.UNSET
    assert attempts[("b", 2)].attributes["state"] == "success"

    # The queue wait of each attempt, under it: queued -> started (300 ms here).
    assert len(by_name["queued"]) == 3
    for q in by_name["queued"]:
        assert q.parent.span_id in {a.context.span_id for a in attempts.values()}
        assert q.end_time - q.start_time == 300_000_000
    assert attempts[("a", 1)].attributes["ledgerflow.queue_wait_ms"] == 300.0

    # Decisions under the run; the redelivered copies added nothing.
    assert len(by_name["scheduler TriggerDagRun"]) == 1
    assert by_name["scheduler TriggerDagRun"][0].parent.span_id == root.context.span_id
    assert len({s.context.span_id for s in finished}) == len(finished)


def test_nothing_is_traced_when_tracing_is_off() -> None:
    assert not telemetry.tracing_enabled()
    _run(_Catalog())  # record_span returns at once: no provider is needed
