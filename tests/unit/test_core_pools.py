"""Pools, priority and concurrency limits, given/when/then, and the property that a
pool never has more attempts running than its slots, whatever the order of events.

The world here is what the services do: DAG owners decide with ``pools=True``; the
arbiter (one :class:`PoolBook`) folds the same run log and grants slots."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from hypothesis import given as hgiven
from hypothesis import settings
from hypothesis import strategies as st
from ledgerflow.common.core import DagState, Tick, decide, empty
from ledgerflow.common.core.arbiter import PoolBook
from ledgerflow.common.core.topology import topology
from ledgerflow.common.events import (
    Envelope,
    PoolSet,
    RunTaskAttempt,
    TaskInstanceQueued,
    deterministic_id,
    make_envelope,
)

from .core_harness import T0, FakeCatalog, dag_of, failed, started, succeeded, task, trigger


def pool_set(name: str, slots: int) -> Envelope:
    return make_envelope(
        PoolSet(name=name, slots=slots),
        id=deterministic_id("pool", name, slots),
        source="ledgerflow/api",
        time=T0,
        aggregate_key=f"pool:{name}",
    )


@dataclass
class World:
    """DAG owners plus the arbiter, with the run log as the one order of events."""

    catalog: FakeCatalog = field(default_factory=FakeCatalog)
    states: dict[str, DagState] = field(default_factory=dict)
    book: PoolBook = field(default_factory=PoolBook)
    now: Any = T0
    log: list[Envelope] = field(default_factory=list)
    work: list[RunTaskAttempt] = field(default_factory=list)
    running: dict[str, set[tuple[str, str, str, int]]] = field(default_factory=dict)
    peak: dict[str, int] = field(default_factory=dict)

    def add(self, dag: Any) -> None:
        self.catalog.add(dag, version_id=f"v-{dag.dag_id}")
        self.states[dag.dag_id] = empty(dag.dag_id)

    def feed(self, env: Envelope | Tick, dag_id: str) -> None:
        decision = decide(self.states[dag_id], env, now=self.now, catalog=self.catalog, pools=True)
        self.states[dag_id] = decision.state
        if isinstance(env, Envelope):
            self._logged(env)
        for e in decision.events:
            self._logged(e)
        self.work += [w.data for w in decision.work]  # type: ignore[misc]

    def _logged(self, env: Envelope) -> None:
        self.log.append(env)
        self.book.apply(env)

    def arbitrate(self) -> None:
        for grant in self.book.arbitrate(now=self.now):
            self.feed(grant, grant.aggregate_key)

    def pool_of(self, item: RunTaskAttempt) -> str:
        dag = self.catalog.get(f"v-{item.dag_id}")
        assert dag is not None
        return topology(dag).tasks[item.task_id].pool

    def start(self, item: RunTaskAttempt) -> None:
        self.now += timedelta(milliseconds=1)
        self.feed(started(item, self.now), item.dag_id)
        pool = self.pool_of(item)
        self.running.setdefault(pool, set()).add(
            (item.dag_id, item.run_id, item.task_id, item.map_index)
        )
        self.peak[pool] = max(self.peak.get(pool, 0), len(self.running[pool]))

    def finish(self, item: RunTaskAttempt, ok: bool = True) -> None:
        self.now += timedelta(milliseconds=1)
        self.running[self.pool_of(item)].discard(
            (item.dag_id, item.run_id, item.task_id, item.map_index)
        )
        report = succeeded(item, self.now) if ok else failed(item, self.now)
        self.feed(report, item.dag_id)
        self.arbitrate()

    def queued_order(self) -> list[str]:
        return [e.data.task_id for e in self.log if isinstance(e.data, TaskInstanceQueued)]


def three_in_solo(dag_id: str = "d", **kw: Any) -> Any:
    return dag_of(
        *(task(f"p{i}", pool="solo", priority_weight=i + 1, **kw) for i in range(3)), dag_id=dag_id
    )


def test_a_task_waits_scheduled_until_the_arbiter_grants_it():
    w = World()
    w.add(three_in_solo())
    w.book.apply(pool_set("solo", 1))
    w.feed(trigger("r1"), "d")
    assert w.work == []
    assert {t.state for t in w.states["d"].runs["r1"].tasks.values()} == {"scheduled"}
    w.arbitrate()
    assert [x.task_id for x in w.work] == ["p2"]  # the highest priority first


def test_pool_of_one_runs_its_tasks_one_at_a_time_in_priority_order():
    w = World()
    w.add(three_in_solo())
    w.book.apply(pool_set("solo", 1))
    w.feed(trigger("r1"), "d")
    w.arbitrate()
    done = 0
    while done < len(w.work):
        item = w.work[done]
        w.start(item)
        w.finish(item)
        done += 1
    assert w.queued_order() == ["p2", "p1", "p0"]
    assert w.peak["solo"] == 1
    assert w.states["d"].runs["r1"].state == "success"


def test_an_unknown_pool_has_no_slots_and_default_pool_has_128():
    w = World()
    w.add(dag_of(task("a", pool="nowhere"), task("b")))
    w.feed(trigger("r1"), "d")
    w.arbitrate()
    assert [x.task_id for x in w.work] == ["b"]
    assert w.book.open_slots("default_pool") == 127


def test_weight_rules_follow_airflow():
    dag = dag_of(
        task("a", priority_weight=1),
        task("b", "a", priority_weight=2),
        task("c", "b", priority_weight=4),
        task("u", "b", priority_weight=1, weight_rule="upstream"),
        task("x", "a", priority_weight=5, weight_rule="absolute"),
    )
    topo = topology(dag)
    assert topo.priority_weight("a") == 1 + 2 + 4 + 1 + 5  # downstream: all descendants
    assert topo.priority_weight("b") == 2 + 4 + 1
    assert topo.priority_weight("u") == 1 + 1 + 2  # upstream: all ancestors
    assert topo.priority_weight("x") == 5


def test_max_active_tis_per_dagrun_and_max_active_tasks():
    w = World()
    w.add(
        dag_of(
            *(task(f"t{i}", max_active_tis_per_dagrun=1) for i in range(1)),
            *(task(f"m{i}") for i in range(5)),
            max_active_tasks=3,
        )
    )
    w.feed(trigger("r1"), "d")
    w.arbitrate()
    assert len(w.work) == 3  # max_active_tasks per run
    w.feed(trigger("r2"), "d")
    w.arbitrate()
    assert len(w.work) == 6  # the limit is per run (Airflow 3)


def test_max_active_tis_per_dag_counts_across_runs():
    w = World()
    w.add(dag_of(task("t", max_active_tis_per_dag=1)))
    w.feed(trigger("r1"), "d")
    w.feed(trigger("r2"), "d")
    w.arbitrate()
    assert [x.run_id for x in w.work] == ["r1"]
    w.start(w.work[0])
    w.finish(w.work[0])
    assert [x.run_id for x in w.work] == ["r1", "r2"]


def test_a_failed_attempt_releases_its_slot_and_its_retry_asks_again():
    w = World()
    w.add(dag_of(task("a", pool="solo", retries=1, retry_delay_seconds=0), task("b", pool="solo")))
    w.book.apply(pool_set("solo", 1))
    w.feed(trigger("r1"), "d")
    w.arbitrate()
    first = w.work[0]
    w.start(first)
    w.finish(first, ok=False)
    # a's retry and b both wait; exactly one of them got the slot.
    assert len(w.work) == 2
    assert w.book.usage()["solo"] == 1


@settings(max_examples=60, deadline=None)
@hgiven(
    slots=st.integers(min_value=1, max_value=3),
    widths=st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=3),
    seed=st.integers(min_value=0, max_value=10_000),
)
def test_a_pool_never_runs_more_than_its_slots(slots, widths, seed):
    rng = random.Random(seed)
    w = World()
    w.book.apply(pool_set("shared", slots))
    for n, width in enumerate(widths):
        dag_id = f"d{n}"
        w.add(
            dag_of(
                *(
                    task(
                        f"t{i}",
                        pool="shared",
                        priority_weight=rng.randint(1, 3),
                        retries=1,
                        retry_delay_seconds=0,
                    )
                    for i in range(width)
                ),
                dag_id=dag_id,
            )
        )
        w.states[dag_id] = empty(dag_id)
        w.feed(trigger("r1", dag_id=dag_id), dag_id)
    w.arbitrate()
    pending = list(w.work)
    running: list[RunTaskAttempt] = []
    steps = 0
    while (pending or running) and steps < 500:
        steps += 1
        if pending and (not running or rng.random() < 0.5):
            item = pending.pop(rng.randrange(len(pending)))
            w.start(item)
            running.append(item)
        else:
            item = running.pop(rng.randrange(len(running)))
            before = len(w.work)
            w.finish(item, ok=rng.random() < 0.7)
            pending += w.work[before:]
        assert len(w.running.get("shared", ())) <= slots
        assert w.book.usage().get("shared", 0) <= slots
    assert w.peak.get("shared", 0) <= slots
    for dag_id in w.states:
        assert w.states[dag_id].runs["r1"].finished
