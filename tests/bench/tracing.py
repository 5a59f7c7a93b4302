"""Micro-benchmark: what tracing costs on the hot path, off and on.

Two paths every message of a run goes through, timed in-process (no broker), best of
``--repeat``:

- the scheduler's decide step for one inbound event, as ``Scheduler._decide`` does it
  (the pure core's ``decide`` driving a fan-out run to the end, then the tracing hook
  that writes the run's and attempts' spans): without the hook at all, with tracing off,
  and with tracing on exporting to a no-op exporter through the SDK's batch processor;
- the producer's header building for one message (``kafka_io._headers``: the
  ``traceparent`` of the active span, or one derived from the run).

"Off" must equal "no hook" within noise: the hook is one boolean check, timed on its
own in the last row.

    uv run --frozen python -m tests.bench.tracing [--width 300] [--repeat 5]
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Sequence
from datetime import timedelta

from ledgerflow.common import kafka_io, telemetry
from ledgerflow.common.core import decide, empty
from ledgerflow.common.events import (
    Envelope,
    RunTaskAttempt,
    TaskAttemptStarted,
    TaskAttemptSucceeded,
    TriggerDagRun,
    make_envelope,
)
from ledgerflow.scheduler.tracing import trace_decision
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from tests.bench.core_fanout import T0, _Catalog, _report, fanout_dag


class NoopExporter(SpanExporter):  # type: ignore[misc]
    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[object]) -> SpanExportResult:
        self.spans += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def decide_run(width: int, hook: bool) -> tuple[int, float]:
    """Drive one fan-out run to the end; returns (inbound events, seconds deciding)."""
    catalog = _Catalog(fanout_dag(width, mapped=False))
    state = empty("fan")
    now = T0
    queue: list[Envelope] = [
        make_envelope(
            TriggerDagRun(dag_id="fan", run_id="r1"),
            id="cmd-1",
            source="ledgerflow/api",
            time=T0,
            aggregate_key="fan",
        )
    ]
    pending: list[RunTaskAttempt] = []
    inbound, spent = 0, 0.0
    while queue or pending:
        if not queue:
            work = pending.pop(0)
            now += timedelta(microseconds=10)
            ref = {
                "dag_id": work.dag_id,
                "run_id": work.run_id,
                "task_id": work.task_id,
                "map_index": work.map_index,
                "try_number": work.try_number,
            }
            queue.append(
                _report(
                    TaskAttemptStarted(**ref, start_date=now, hostname="h", executor_id="e"), now
                )
            )
            queue.append(_report(TaskAttemptSucceeded(**ref, end_date=now, executor_id="e"), now))
        env = queue.pop(0)
        t = time.perf_counter()
        before = state
        decision = decide(before, env, now=now, catalog=catalog)
        if hook and telemetry.tracing_enabled():
            trace_decision(before, env, decision, catalog=catalog, started=now)
        spent += time.perf_counter() - t
        state = decision.state
        inbound += 1
        pending.extend(w.data for w in decision.work if isinstance(w.data, RunTaskAttempt))
    assert state.runs["r1"].state == "success"
    return inbound, spent


def per_event_us(width: int, hooks: Sequence[bool], repeat: int) -> list[float]:
    """Best µs per inbound event for each of ``hooks``, runs interleaved (so a change of
    machine load hits them alike)."""
    best = [float("inf")] * len(hooks)
    for r in range(repeat):
        order = list(enumerate(hooks))
        for i, hook in order if r % 2 == 0 else reversed(order):  # neither always first
            gc.collect()
            n, spent = decide_run(width, hook)
            best[i] = min(best[i], spent / n * 1e6)
    return best


def headers_us(repeat: int, n: int = 20_000) -> float:
    env = make_envelope(
        RunTaskAttempt(
            dag_id="d", run_id="r", task_id="t", try_number=1, version_id="v", queue="default"
        ),
        id="w1",
        source="bench",
        time=T0,
        aggregate_key="d",
        correlation_id="r",
    )
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(n):
            kafka_io._headers(env, None)
        best = min(best, (time.perf_counter() - t) / n)
    return best * 1e6


def hook_off_ns(n: int = 1_000_000) -> float:
    """The hook itself with tracing off (what every decision, message and attempt pays)."""
    enabled = telemetry.tracing_enabled
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(n):
            if enabled():
                raise AssertionError("tracing is on")
        best = min(best, (time.perf_counter() - t) / n)
    return best * 1e9


def row(name: str, cells: Sequence[float]) -> str:
    return f"| {name} | " + " | ".join(f"{c:.2f}" for c in cells) + " |"


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=6)
    args = ap.parse_args(argv)
    assert not telemetry.tracing_enabled(), "run without OTEL_* variables set"
    decide_run(args.width, True)  # warm up
    no_hook, off = per_event_us(args.width, (False, True), args.repeat)
    headers_off = headers_us(args.repeat)
    hook_ns = hook_off_ns()
    exporter = NoopExporter()
    telemetry.configure_tracing("ledgerflow-bench", exporter=exporter)
    (on,) = per_event_us(args.width, (True,), args.repeat)
    headers_on = headers_us(args.repeat)
    telemetry.flush()
    print()
    print(
        f"Tracing cost per message (µs, best of {args.repeat}; a {args.width}-task fan-out "
        f"run decided in-process; 'on' exports {exporter.spans} spans to a no-op exporter)"
    )
    print()
    print("| path | no tracing code | tracing off | tracing on (no-op exporter) |")
    print("|---|---:|---:|---:|")
    print(row("scheduler: decide one inbound event + tracing hook", (no_hook, off, on)))
    print(f"| producer: Kafka headers of one message | – | {headers_off:.2f} | {headers_on:.2f} |")
    print(f"| the tracing hook alone, off (one boolean check) | – | {hook_ns / 1000:.3f} | – |")
    print()
    print(
        f"Tracing off adds {hook_ns:.0f} ns per decision, "
        f"{100 * hook_ns / 1000 / no_hook:.3f}% of deciding one event; the difference "
        f"between the first two columns ({100 * (off - no_hook) / no_hook:+.1f}%) is noise."
    )


if __name__ == "__main__":
    main()
