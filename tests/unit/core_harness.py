"""Test helpers for the pure core: a fake catalog, event builders, a run simulator."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ledgerflow.common.core import DagState, Decision, Tick, decide, empty, evolve
from ledgerflow.common.dagmodel import SerializedDag, SerializedTask
from ledgerflow.common.events import (
    Envelope,
    RunTaskAttempt,
    TaskAttemptFailed,
    TaskAttemptRescheduled,
    TaskAttemptSkipped,
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
    edges: dict[str, list[str]],
    *,
    dag_id: str = "d",
    retries: int = 0,
    retry_delay: float = 10.0,
    **task_kw: Any,
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
                **task_kw,
            )
            for t, ups in edges.items()
        ),
    )


def task(task_id: str, *upstream: str, **kw: Any) -> SerializedTask:
    """One task; ``kw`` are any :class:`SerializedTask` fields."""
    kw.setdefault("operator", "PythonOperator")
    return SerializedTask(task_id=task_id, upstream_task_ids=upstream, **kw)


def dag_of(*tasks: SerializedTask, dag_id: str = "d", **kw: Any) -> SerializedDag:
    return SerializedDag(dag_id=dag_id, fileloc="dags/d.py", tasks=tasks, **kw)


def catalog_of(dag: SerializedDag) -> FakeCatalog:
    c = FakeCatalog()
    c.add(dag)
    return c


def trigger(
    run_id: str = "r1",
    *,
    dag_id: str = "d",
    at: datetime = T0,
    command_id: str | None = None,
    logical_date: datetime | None = None,
) -> Envelope:
    return make_envelope(
        TriggerDagRun(dag_id=dag_id, run_id=run_id, logical_date=logical_date),
        id=command_id or deterministic_id("cmd", dag_id, run_id),
        source="ledgerflow/api",
        time=at,
        aggregate_key=dag_id,
        correlation_id=run_id,
    )


def _report(data: Any, at: datetime) -> Envelope:
    return make_envelope(
        data,
        id=deterministic_id(
            type(data).__name__,
            *(getattr(data, k) for k in ("dag_id", "run_id", "task_id", "map_index", "try_number")),
        ),
        source="ledgerflow/executor",
        time=at,
        aggregate_key=data.dag_id,
        correlation_id=data.run_id,
    )


def started(work: RunTaskAttempt, at: datetime) -> Envelope:
    return _report(
        TaskAttemptStarted(**_ref(work), start_date=at, hostname="h", executor_id="e"), at
    )


def succeeded(
    work: RunTaskAttempt,
    at: datetime,
    value: object = None,
    *,
    xcoms: dict[str, Any] | None = None,
    follow: tuple[str, ...] | None = None,
    short_circuit: str | None = None,
) -> Envelope:
    return _report(
        TaskAttemptSucceeded(
            **_ref(work),
            end_date=at,
            return_value=value,
            executor_id="e",
            xcoms=xcoms or {},
            follow_task_ids=follow,
            short_circuit=short_circuit,  # type: ignore[arg-type]
        ),
        at,
    )


def failed(work: RunTaskAttempt, at: datetime, *, retryable: bool = True) -> Envelope:
    return _report(
        TaskAttemptFailed(
            **_ref(work), end_date=at, error="boom", retryable=retryable, executor_id="e"
        ),
        at,
    )


def skipped(work: RunTaskAttempt, at: datetime, reason: str = "AirflowSkipException") -> Envelope:
    return _report(
        TaskAttemptSkipped(**_ref(work), end_date=at, reason=reason, executor_id="e"), at
    )


def rescheduled(work: RunTaskAttempt, at: datetime, until: datetime) -> Envelope:
    return _report(
        TaskAttemptRescheduled(**_ref(work), end_date=at, reschedule_date=until, executor_id="e"),
        at,
    )


def _ref(work: RunTaskAttempt) -> dict[str, Any]:
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


@dataclass(frozen=True)
class Report:
    """What a simulated attempt reports (see :class:`Simulation`)."""

    status: str = "success"  # success | failed | skipped | rescheduled
    value: Any = None
    xcoms: dict[str, Any] | None = None
    follow: tuple[str, ...] | None = None
    short_circuit: str | None = None
    retryable: bool = True
    reschedule_after: timedelta = timedelta(seconds=30)


@dataclass
class Simulation:
    """Drives the core like the scheduler and an executor would, recording the log.

    ``outcome`` says how each attempt ends: ``True``/``False`` (success with the task id
    as return value / a retryable failure) or a :class:`Report`.
    """

    catalog: FakeCatalog
    outcome: Callable[[RunTaskAttempt], bool | Report]
    state: DagState = field(default_factory=lambda: empty("d"))
    now: datetime = T0
    log: list[Envelope] = field(default_factory=list)
    runs_of: dict[tuple[str, int], int] = field(default_factory=dict)
    work: list[RunTaskAttempt] = field(default_factory=list)

    def feed(self, inbound: Envelope | Tick) -> Decision:
        decision = decide(self.state, inbound, now=self.now, catalog=self.catalog)
        if isinstance(inbound, Envelope) and inbound.source == "ledgerflow/executor":
            self.log.append(inbound)
        self.state = decision.state
        self.log.extend(decision.events)
        self.work.extend(_work(decision))
        return decision

    def run(self, first: Envelope, max_steps: int = 10_000) -> None:
        pending: list[RunTaskAttempt] = list(_work(self.feed(first)))
        steps = 0
        while steps < max_steps:
            steps += 1
            if not pending:
                decision = self.feed(Tick(self.state.dag_id))
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
            pending.extend(_work(self.feed(self._report(work))))
        raise AssertionError("simulation did not settle")

    def _report(self, work: RunTaskAttempt) -> Envelope:
        r = self.outcome(work)
        if r is True:
            return succeeded(work, self.now, value=work.task_id)
        if r is False:
            return failed(work, self.now)
        assert isinstance(r, Report)
        if r.status == "success":
            return succeeded(
                work,
                self.now,
                value=r.value,
                xcoms=r.xcoms,
                follow=r.follow,
                short_circuit=r.short_circuit,
            )
        if r.status == "skipped":
            return skipped(work, self.now)
        if r.status == "rescheduled":
            return rescheduled(work, self.now, self.now + r.reschedule_after)
        return failed(work, self.now, retryable=r.retryable)


def _work(decision: Decision) -> list[RunTaskAttempt]:
    return [w.data for w in decision.work if isinstance(w.data, RunTaskAttempt)]


@dataclass
class Driver:
    """Steps the core by hand: trigger, report attempts one by one, tick, and look.

    ``last`` is the decision of the latest step; ``work`` maps each task instance to its
    latest work item.
    """

    catalog: FakeCatalog
    state: DagState = field(default_factory=lambda: empty("d"))
    now: datetime = T0
    log: list[Envelope] = field(default_factory=list)
    work: dict[tuple[str, int], RunTaskAttempt] = field(default_factory=dict)
    last: Decision | None = None
    run_id: str = "r1"

    @classmethod
    def of(cls, dag: SerializedDag) -> Driver:
        return cls(catalog=catalog_of(dag), state=empty(dag.dag_id))

    def feed(self, inbound: Envelope | Tick) -> Decision:
        decision = decide(self.state, inbound, now=self.now, catalog=self.catalog)
        if isinstance(inbound, Envelope) and inbound.source == "ledgerflow/executor":
            self.log.append(inbound)
        self.state = decision.state
        self.log.extend(decision.events)
        for w in _work(decision):
            self.work[(w.task_id, w.map_index)] = w
        self.last = decision
        return decision

    def trigger(self, run_id: str = "r1", **kw: Any) -> Decision:
        self.run_id = run_id
        return self.feed(trigger(run_id, dag_id=self.state.dag_id, at=self.now, **kw))

    def tick(self, *, full: bool = True) -> Decision:
        return self.feed(Tick(self.state.dag_id, full=full))

    def later(self, **delta: float) -> Driver:
        self.now += timedelta(**delta)
        return self

    def _item(self, task_id: str, map_index: int) -> RunTaskAttempt:
        return self.work[(task_id, map_index)]

    def start(self, task_id: str, map_index: int = -1) -> Decision:
        return self.feed(started(self._item(task_id, map_index), self.now))

    def succeed(self, task_id: str, map_index: int = -1, value: Any = None, **kw: Any) -> Decision:
        self.start(task_id, map_index)
        return self.feed(succeeded(self._item(task_id, map_index), self.now, value, **kw))

    def fail(self, task_id: str, map_index: int = -1, *, retryable: bool = True) -> Decision:
        self.start(task_id, map_index)
        return self.feed(failed(self._item(task_id, map_index), self.now, retryable=retryable))

    def skip(self, task_id: str, map_index: int = -1) -> Decision:
        self.start(task_id, map_index)
        return self.feed(skipped(self._item(task_id, map_index), self.now))

    def reschedule(self, task_id: str, map_index: int = -1, *, seconds: float = 60) -> Decision:
        self.start(task_id, map_index)
        item = self._item(task_id, map_index)
        return self.feed(rescheduled(item, self.now, self.now + timedelta(seconds=seconds)))

    def run(self, run_id: str | None = None) -> Any:
        return self.state.runs[run_id or self.run_id]

    def ti(self, task_id: str, map_index: int = -1, run_id: str | None = None) -> Any:
        return self.run(run_id).ti(task_id, map_index)

    def states(self, run_id: str | None = None) -> dict[str, str | None]:
        """State per task id (``task[i]`` for map indexes)."""
        run = self.run(run_id)
        out: dict[str, str | None] = {}
        dag = self.catalog.get(run.version_id)
        assert dag is not None
        for t in dag.tasks:
            for i in run.map_indexes(t.task_id):
                name = t.task_id if i < 0 else f"{t.task_id}[{i}]"
                out[name] = run.ti(t.task_id, i).state
        return out

    def types(self) -> list[str]:
        assert self.last is not None
        return [e.data.type for e in self.last.events]

    def queued(self) -> list[tuple[str, int]]:
        assert self.last is not None
        return [(w.data.task_id, w.data.map_index) for w in self.last.work]  # type: ignore[union-attr]
