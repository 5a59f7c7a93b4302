"""Micro-benchmark of the pure core: how fast ``decide`` gets through a wide fan-out.

A DAG of one root, ``width`` tasks below it (plain tasks, or one task mapped over the
root's return value) and one join below those. The benchmark drives one run to the end
in-process, as the scheduler and an executor would (every work item is started and
succeeds), and times only the core (``decide``), not the event construction of the fake
executor. It prints a table: inbound events decided per second and all events (inbound
plus decided) per second.

    uv run --frozen python -m tests.bench.core_fanout [--width 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

from ledgerflow.common.core import Tick, decide, empty
from ledgerflow.common.dagmodel import MapSource, MapSpec, SerializedDag, SerializedTask
from ledgerflow.common.events import (
    Envelope,
    RunTaskAttempt,
    TaskAttemptStarted,
    TaskAttemptSucceeded,
    TriggerDagRun,
    deterministic_id,
    make_envelope,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class _Catalog:
    def __init__(self, dag: SerializedDag) -> None:
        self.dag = dag

    def get(self, version_id: str) -> SerializedDag | None:
        return self.dag if version_id == "v1" else None

    def latest_version_id(self, dag_id: str) -> str | None:
        return "v1"


def fanout_dag(width: int, *, mapped: bool) -> SerializedDag:
    """root -> ``width`` tasks (or one task mapped ``width`` ways) -> join."""
    if mapped:
        middle: tuple[SerializedTask, ...] = (
            SerializedTask(
                task_id="fan",
                operator="PythonOperator",
                upstream_task_ids=("root",),
                mapped=MapSpec(sources=(MapSource(arg="x", task_id="root"),)),
            ),
        )
    else:
        middle = tuple(
            SerializedTask(task_id=f"t{i}", operator="PythonOperator", upstream_task_ids=("root",))
            for i in range(width)
        )
    join = SerializedTask(
        task_id="join",
        operator="PythonOperator",
        upstream_task_ids=tuple(t.task_id for t in middle),
    )
    root = SerializedTask(task_id="root", operator="PythonOperator")
    return SerializedDag(dag_id="fan", fileloc="fan.py", tasks=(root, *middle, join))


def _report(data: TaskAttemptStarted | TaskAttemptSucceeded, at: datetime) -> Envelope:
    return make_envelope(
        data,
        id=deterministic_id(type(data).__name__, data.task_id, data.map_index, data.try_number),
        source="ledgerflow/executor",
        time=at,
        aggregate_key=data.dag_id,
        correlation_id=data.run_id,
    )


def run_once(width: int, *, mapped: bool) -> tuple[int, int, float]:
    """Drive one run to the end; returns (inbound events, decided events, seconds in
    ``decide``)."""
    catalog = _Catalog(fanout_dag(width, mapped=mapped))
    state = empty("fan")
    now = T0
    inbound = 0
    emitted = 0
    spent = 0.0
    trigger = make_envelope(
        TriggerDagRun(dag_id="fan", run_id="r1"),
        id="cmd-1",
        source="ledgerflow/api",
        time=T0,
        aggregate_key="fan",
    )
    pending: list[RunTaskAttempt] = []
    queue: list[Envelope] = [trigger]
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
            value = list(range(width)) if work.task_id == "root" else work.map_index
            queue.append(
                _report(
                    TaskAttemptStarted(**ref, start_date=now, hostname="h", executor_id="e"), now
                )
            )
            queue.append(
                _report(
                    TaskAttemptSucceeded(**ref, end_date=now, return_value=value, executor_id="e"),
                    now,
                )
            )
        env = queue.pop(0)
        t = time.perf_counter()
        decision = decide(state, env, now=now, catalog=catalog)
        spent += time.perf_counter() - t
        state = decision.state
        inbound += 1
        emitted += len(decision.events)
        pending.extend(w.data for w in decision.work if isinstance(w.data, RunTaskAttempt))
    final = decide(state, Tick("fan"), now=now, catalog=catalog)
    assert final.state.runs["r1"].state == "success", final.state.runs["r1"].state
    return inbound, emitted, spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(
        f"{'fan-out':<10} {'width':>6} {'inbound':>8} {'decided':>8} {'seconds':>8} "
        f"{'inbound/s':>10} {'all ev/s':>10}"
    )
    for mapped in (False, True):
        best: tuple[int, int, float] | None = None
        for _ in range(args.repeat):
            result = run_once(args.width, mapped=mapped)
            if best is None or result[2] < best[2]:
                best = result
        assert best is not None
        inbound, emitted, spent = best
        print(
            f"{'mapped' if mapped else 'plain':<10} {args.width:>6} {inbound:>8} {emitted:>8} "
            f"{spent:>8.3f} {inbound / spent:>10.0f} {(inbound + emitted) / spent:>10.0f}"
        )


if __name__ == "__main__":
    main()
