"""Test helpers for the pure core: a fake catalog, event builders, a run simulator."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ledgerflow.common.core import DagState, Decision, Tick, decide, empty, evolve
from ledgerflow.common.dagmodel import SerializedDag, SerializedTask
from ledgerflow.common.events import (
    Envelope,
    RunTaskAttempt,
    TaskAttemptFailed,
    TaskAttemptStarted,
    TaskAttemptSucceeded,
    TriggerDagRun,
    deterministic_id,
    make_envelope,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class FakeCatalog:
    versions: dict[str, SerializedDag] = field(default_factory=dict)
    latest: dict[str, str] = field(default_factory=dict)

    def add(self, dag: SerializedDag, version_id: str = "v1") -> str:
        self.versions[version_id] = dag
        self.latest[dag.dag_id] = version_id
        return version_id

    def get(self, version_id: str) -> SerializedDag | None:
        return self.versions.get(version_id)

    def latest_version_id(self, dag_id: str) -> str | None:
        return self.latest.get(dag_id)


def make_dag(
    edges: dict[str, list[str]], *, dag_id: str = "d", retries: int = 0, retry_delay: float = 10.0
) -> SerializedDag:
    """``edges`` maps task id -> upstream task ids, in declaration order."""
    return SerializedDag(
        dag_id=dag_id,
        fileloc="dags/d.py",
        tasks=tuple(
            SerializedTask(
                task_id=t,
                operator="PythonOperator",
                upstream_task_ids=tuple(ups),
                retries=retries,
                retry_delay_seconds=retry_delay,
            )
            for t, ups in edges.items()
        ),
    )


def trigger(
    run_id: str = "r1", *, dag_id: str = "d", at: datetime = T0, command_id: str | None = None
) -> Envelope:
    return make_envelope(
        TriggerDagRun(dag_id=dag_id, run_id=run_id),
        id=command_id or deterministic_id("cmd", dag_id, run_id),
        source="ledgerflow/api",
        time=at,
        aggregate_key=dag_id,
        correlation_id=run_id,
    )


def _report(data: object, at: datetime) -> Envelope:
    return make_envelope(
        data,  # type: ignore[arg-type]
        id=deterministic_id(
            type(data).__name__,
            *(getattr(data, k) for k in ("dag_id", "run_id", "task_id", "map_index", "try_number")),
        ),
        source="ledgerflow/executor",
        time=at,
        aggregate_key=data.dag_id,  # type: ignore[attr-defined]
        correlation_id=data.run_id,  # type: ignore[attr-defined]
    )


def started(work: RunTaskAttempt, at: datetime) -> Envelope:
    return _report(
        TaskAttemptStarted(**_ref(work), start_date=at, hostname="h", executor_id="e"), at
    )


def succeeded(work: RunTaskAttempt, at: datetime, value: object = None) -> Envelope:
    return _report(
        TaskAttemptSucceeded(**_ref(work), end_date=at, return_value=value, executor_id="e"), at
    )


def failed(work: RunTaskAttempt, at: datetime, *, retryable: bool = True) -> Envelope:
    return _report(
        TaskAttemptFailed(
            **_ref(work), end_date=at, error="boom", retryable=retryable, executor_id="e"
        ),
        at,
    )


def _ref(work: RunTaskAttempt) -> dict[str, object]:
    return {
        "dag_id": work.dag_id,
        "run_id": work.run_id,
        "task_id": work.task_id,
        "map_index": work.map_index,
        "try_number": work.try_number,
    }


def given(*events: Envelope, dag_id: str = "d") -> DagState:
    state = empty(dag_id)
    for e in events:
        state = evolve(state, e)
    return state


@dataclass
class Simulation:
    """Drives the core like the scheduler and an executor would, recording the log."""

    catalog: FakeCatalog
    outcome: Callable[[RunTaskAttempt], bool]
    state: DagState = field(default_factory=lambda: empty("d"))
    now: datetime = T0
    log: list[Envelope] = field(default_factory=list)
    runs_of: dict[tuple[str, int], int] = field(default_factory=dict)

    def feed(self, inbound: Envelope | Tick) -> Decision:
        decision = decide(self.state, inbound, now=self.now, catalog=self.catalog)
        if isinstance(inbound, Envelope) and inbound.source == "ledgerflow/executor":
            self.log.append(inbound)
        self.state = decision.state
        self.log.extend(decision.events)
        return decision

    def run(self, first: Envelope, max_steps: int = 10_000) -> None:
        pending: list[RunTaskAttempt] = list(_work(self.feed(first)))
        steps = 0
        while steps < max_steps:
            steps += 1
            if not pending:
                decision = self.feed(Tick("d"))
                pending.extend(_work(decision))
                if not pending:
                    if decision.wake_at is None:
                        return
                    self.now = max(self.now, decision.wake_at)
                continue
            work = pending.pop(0)
            key = (work.task_id, work.map_index)
            self.runs_of[key] = self.runs_of.get(key, 0) + 1
            self.now += timedelta(milliseconds=1)
            pending.extend(_work(self.feed(started(work, self.now))))
            self.now += timedelta(milliseconds=1)
            report = (
                succeeded(work, self.now, value=work.task_id)
                if self.outcome(work)
                else failed(work, self.now)
            )
            pending.extend(_work(self.feed(report)))
        raise AssertionError("simulation did not settle")


def _work(decision: Decision) -> list[RunTaskAttempt]:
    return [w.data for w in decision.work if isinstance(w.data, RunTaskAttempt)]
