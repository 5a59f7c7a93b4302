"""The pool arbiter's fold and decision (ADR 0011). Pure: no I/O, no clock.

Pools are global, but scheduler instances own disjoint sets of DAGs. So one arbiter
(the scheduler instance that owns partition 0 of the run log) reads the whole run log
and grants slots: a DAG's owner writes ``TaskInstanceScheduled`` when an instance may
run, the arbiter answers with ``PoolSlotsGranted`` on the run log, and the owner then
queues it. Because the arbiter's state is a fold of the run log (plus pool sizes from
the config topic), a new arbiter rebuilds it by replay and grants exactly what the old
one would have next; grants have deterministic ids, so a repeat is dropped.

Besides pools the arbiter enforces the limits that count across runs or tasks, in the
same priority order, as Airflow's ``_executable_task_instances_to_queued`` does:
``max_active_tasks`` (per DAG run, as in Airflow 3), ``max_active_tis_per_dag`` and
``max_active_tis_per_dagrun``. An instance holds its slots from the grant until its
attempt ends (any report that ends it, a zombie verdict, a clear or a mark).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from ledgerflow.common.events import (
    Envelope,
    PoolDeleted,
    PoolSet,
    PoolSlotsGranted,
    TaskAttemptFailed,
    TaskAttemptRescheduled,
    TaskAttemptSkipped,
    TaskAttemptSucceeded,
    TaskAttemptZombie,
    TaskInstanceCleared,
    TaskInstanceScheduled,
    TaskInstanceStateSet,
    deterministic_id,
    make_envelope,
)

ARBITER_SOURCE = "ledgerflow/pools"
DEFAULT_POOL = "default_pool"
DEFAULT_POOL_SLOTS = 128

TIRef = tuple[str, str, str, int]
"""(dag_id, run_id, task_id, map_index)"""

_ATTEMPT_ENDS = (
    TaskAttemptSucceeded,
    TaskAttemptFailed,
    TaskAttemptSkipped,
    TaskAttemptRescheduled,
    TaskAttemptZombie,
)


@dataclass
class Claim:
    """One attempt that asked for slots: waiting until granted, then holding."""

    ref: TIRef
    try_number: int
    pool: str
    slots: int
    priority: int
    at: datetime
    order: int
    max_active_tasks: int | None
    max_active_tis_per_dag: int | None
    max_active_tis_per_dagrun: int | None
    holding: bool = False

    def sort_key(self) -> tuple[int, datetime, TIRef]:
        """Priority first, then the oldest request, then the instance (deterministic
        whatever order the run log's partitions were read in)."""
        return (-self.priority, self.at, self.ref)


@dataclass
class PoolBook:
    """Claims, pool sizes and the counts the limits need. ``apply`` folds one event;
    ``arbitrate`` decides the grants due now and folds them at once (so the arbiter
    never grants the same slot twice while its grants travel)."""

    sizes: dict[str, int] = field(default_factory=dict)
    claims: dict[TIRef, Claim] = field(default_factory=dict)
    used: dict[str, int] = field(default_factory=dict)
    per_run: dict[tuple[str, str], int] = field(default_factory=dict)
    per_task: dict[tuple[str, str], int] = field(default_factory=dict)
    per_task_run: dict[tuple[str, str, str], int] = field(default_factory=dict)
    _arrivals: int = 0
    changed: bool = True

    # ------------------------------------------------------------------ sizes
    def size(self, pool: str) -> int:
        """Slots of ``pool``: -1 unlimited; a pool nobody created has none (its tasks
        wait, as in Airflow); ``default_pool`` has 128 until set."""
        if pool in self.sizes:
            return self.sizes[pool]
        return DEFAULT_POOL_SLOTS if pool == DEFAULT_POOL else 0

    def open_slots(self, pool: str) -> int | None:
        size = self.size(pool)
        return None if size < 0 else size - self.used.get(pool, 0)

    # ------------------------------------------------------------------ fold
    def apply(self, env: Envelope) -> None:
        data = env.data
        if isinstance(data, PoolSet):
            self.sizes[data.name] = data.slots
            self.changed = True
            return
        if isinstance(data, PoolDeleted):
            self.sizes.pop(data.name, None)
            self.changed = True
            return
        ref_parts = (
            getattr(data, "dag_id", None),
            getattr(data, "run_id", None),
            getattr(data, "task_id", None),
        )
        if None in ref_parts:
            return
        ref: TIRef = (*ref_parts, getattr(data, "map_index", -1))  # type: ignore[assignment]
        claim = self.claims.get(ref)
        if isinstance(data, TaskInstanceScheduled):
            if claim is None or data.try_number > claim.try_number:
                if claim is not None:
                    self._drop(claim)
                self._arrivals += 1
                self.claims[ref] = Claim(
                    ref=ref,
                    try_number=data.try_number,
                    pool=data.pool,
                    slots=data.pool_slots,
                    priority=data.priority_weight,
                    at=data.at,
                    order=self._arrivals,
                    max_active_tasks=data.max_active_tasks,
                    max_active_tis_per_dag=data.max_active_tis_per_dag,
                    max_active_tis_per_dagrun=data.max_active_tis_per_dagrun,
                )
                self.changed = True
            return
        if claim is None:
            return
        if isinstance(data, PoolSlotsGranted):
            if data.try_number == claim.try_number and not claim.holding:
                self._hold(claim)
            return
        try_number = getattr(data, "try_number", None)
        ends = isinstance(data, _ATTEMPT_ENDS) and try_number == claim.try_number
        # A clear or a mark names the instance's last attempt: the claimed one once it
        # was queued, the one before while it waited.
        ends = ends or (
            isinstance(data, TaskInstanceCleared | TaskInstanceStateSet)
            and try_number in (claim.try_number, claim.try_number - 1)
        )
        if ends:
            self._drop(claim)
            self.changed = True

    def _counters(self, claim: Claim) -> list[tuple[dict, object]]:  # type: ignore[type-arg]
        dag_id, run_id, task_id, _ = claim.ref
        return [
            (self.per_run, (dag_id, run_id)),
            (self.per_task, (dag_id, task_id)),
            (self.per_task_run, (dag_id, run_id, task_id)),
        ]

    def _hold(self, claim: Claim) -> None:
        claim.holding = True
        self.used[claim.pool] = self.used.get(claim.pool, 0) + claim.slots
        for counter, key in self._counters(claim):
            counter[key] = counter.get(key, 0) + 1

    def _drop(self, claim: Claim) -> None:
        del self.claims[claim.ref]
        if not claim.holding:
            return
        self.used[claim.pool] -= claim.slots
        for counter, key in self._counters(claim):
            counter[key] -= 1
            if not counter[key]:
                del counter[key]

    # ------------------------------------------------------------------ decide
    def _fits(self, claim: Claim) -> bool:
        open_slots = self.open_slots(claim.pool)
        if open_slots is not None and claim.slots > open_slots:
            return False
        dag_id, run_id, task_id, _ = claim.ref
        limits = (
            (claim.max_active_tasks, self.per_run.get((dag_id, run_id), 0)),
            (claim.max_active_tis_per_dag, self.per_task.get((dag_id, task_id), 0)),
            (claim.max_active_tis_per_dagrun, self.per_task_run.get((dag_id, run_id, task_id), 0)),
        )
        return all(limit is None or active < limit for limit, active in limits)

    def arbitrate(self, *, now: datetime) -> list[Envelope]:
        """Grant, highest priority first (then oldest), every waiting claim that fits;
        a claim that does not fit is passed over, not waited for (Airflow's rule)."""
        if not self.changed:
            return []
        self.changed = False
        grants: list[Envelope] = []
        waiting = sorted((c for c in self.claims.values() if not c.holding), key=Claim.sort_key)
        for claim in waiting:
            if not self._fits(claim):
                continue
            self._hold(claim)
            dag_id, run_id, task_id, map_index = claim.ref
            grants.append(
                make_envelope(
                    PoolSlotsGranted(
                        dag_id=dag_id,
                        run_id=run_id,
                        task_id=task_id,
                        map_index=map_index,
                        try_number=claim.try_number,
                        pool=claim.pool,
                        slots=claim.slots,
                        at=now,
                    ),
                    id=deterministic_id("PoolSlotsGranted", *claim.ref, claim.try_number),
                    source=ARBITER_SOURCE,
                    time=now,
                    aggregate_key=dag_id,
                    correlation_id=run_id,
                )
            )
        return grants

    def usage(self) -> Mapping[str, int]:
        """Slots held per pool (for logs and tests)."""
        return dict(self.used)
