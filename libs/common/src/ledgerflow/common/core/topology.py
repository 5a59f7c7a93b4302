"""What the core derives from a DAG's structure, once per DAG version.

Edges are ``upstream_task_ids`` plus, for a mapped task, the tasks whose XComs it maps
over (Airflow adds those edges when ``expand`` is given an ``XComArg``; the SDK normally
lists them already). Everything here is a pure function of the serialized DAG; the
memo only saves recomputing it for every event.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ledgerflow.common.dagmodel import SerializedDag, SerializedTask

_MEMO_SIZE = 256
_memo: dict[int, Topology] = {}


def topology(dag: SerializedDag) -> Topology:
    """The derived structure of ``dag`` (memoised by object identity)."""
    found = _memo.get(id(dag))
    if found is not None and found.dag is dag:
        return found
    if len(_memo) >= _MEMO_SIZE:
        _memo.pop(next(iter(_memo)))
    topo = _memo[id(dag)] = Topology.build(dag)
    return topo


@dataclass(eq=False)
class Topology:
    """Edges, closures, setups and leaves of one DAG version.

    ``order`` is the declaration order, used wherever the core must iterate tasks in a
    stable order (emitted events and XComs in work items come out in it).
    """

    dag: SerializedDag
    tasks: dict[str, SerializedTask]
    order: dict[str, int]
    upstreams: dict[str, tuple[str, ...]]
    downstreams: dict[str, tuple[str, ...]]
    leaves: tuple[str, ...]
    past_dependent: tuple[str, ...]
    has_setups: bool
    mapped: frozenset[str]
    setups: frozenset[str]
    _ancestors: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _descendants: dict[str, frozenset[str]] = field(default_factory=dict)
    _setups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _setup_dependents: dict[str, tuple[str, ...]] | None = None
    _count_plans: dict[str, CountPlan] = field(default_factory=dict)
    _weights: dict[str, int] = field(default_factory=dict)

    @classmethod
    def build(cls, dag: SerializedDag) -> Topology:
        tasks = {t.task_id: t for t in dag.tasks}
        order = {t.task_id: i for i, t in enumerate(dag.tasks)}
        upstreams: dict[str, tuple[str, ...]] = {}
        for t in dag.tasks:
            ups = list(t.upstream_task_ids)
            if t.mapped is not None:
                ups += [s.task_id for s in t.mapped.sources if s.task_id is not None]
            upstreams[t.task_id] = tuple(
                dict.fromkeys(u for u in ups if u in tasks and u != t.task_id)
            )
        down: dict[str, list[str]] = {t.task_id: [] for t in dag.tasks}
        for t in dag.tasks:
            for u in upstreams[t.task_id]:
                down[u].append(t.task_id)
        downstreams = {k: tuple(v) for k, v in down.items()}
        return cls(
            dag=dag,
            tasks=tasks,
            order=order,
            upstreams=upstreams,
            downstreams=downstreams,
            leaves=_effective_leaves(dag.tasks, tasks, downstreams),
            past_dependent=tuple(
                t.task_id for t in dag.tasks if t.depends_on_past or t.wait_for_downstream
            ),
            has_setups=any(t.is_setup for t in dag.tasks),
            mapped=frozenset(t.task_id for t in dag.tasks if t.mapped is not None),
            setups=frozenset(t.task_id for t in dag.tasks if t.is_setup),
        )

    def sorted(self, task_ids: Iterable[str]) -> list[str]:
        """``task_ids`` in declaration order."""
        return sorted(task_ids, key=self.order.__getitem__)

    def count_plan(self, task_id: str) -> CountPlan:
        """How to count ``task_id``'s direct upstreams: over the upstreams themselves,
        or, for a fan-in whose upstreams are most of the DAG, over the other tasks,
        subtracted from the run's totals (a 1,000-wide join is then counted over two
        tasks, not a thousand)."""
        found = self._count_plans.get(task_id)
        if found is None:
            ups = self.upstreams[task_id]
            if len(ups) * 2 > len(self.tasks):
                chosen = set(ups)
                others = tuple(t for t in self.order if t not in chosen)
                found = CountPlan(others, negate=True, setups=self._setups_in(ups))
            else:
                found = CountPlan(ups, negate=False, setups=self._setups_in(ups))
            self._count_plans[task_id] = found
        return found

    def _setups_in(self, task_ids: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(t for t in task_ids if t in self.setups)

    def priority_weight(self, task_id: str) -> int:
        """Airflow's effective priority weight: the task's own with ``absolute``, plus
        every descendant's with ``downstream`` (the default), plus every ancestor's with
        ``upstream``."""
        found = self._weights.get(task_id)
        if found is None:
            task = self.tasks[task_id]
            if task.weight_rule == "downstream":
                others: Iterable[str] = self.descendants(task_id)
            elif task.weight_rule == "upstream":
                others = self.ancestors(task_id)
            else:
                others = ()
            found = task.priority_weight + sum(self.tasks[t].priority_weight for t in others)
            self._weights[task_id] = found
        return found

    def ancestors(self, task_id: str) -> tuple[str, ...]:
        """Every task upstream of ``task_id``, transitively, in declaration order."""
        found = self._ancestors.get(task_id)
        if found is None:
            found = self._ancestors[task_id] = tuple(self.sorted(_closure(task_id, self.upstreams)))
        return found

    def descendants(self, task_id: str) -> frozenset[str]:
        """Every task downstream of ``task_id``, transitively."""
        found = self._descendants.get(task_id)
        if found is None:
            found = self._descendants[task_id] = frozenset(_closure(task_id, self.downstreams))
        return found

    def indirect_setups(self, task_id: str) -> tuple[str, ...]:
        """The setups a (non-teardown) task must wait for besides its direct upstreams.

        Airflow's ``get_upstreams_only_setups``: an upstream setup is relevant when it
        has no teardown or one of its teardowns is downstream of the task; the direct
        upstreams are left out because the trigger rule already counts them.
        """
        found = self._setups.get(task_id)
        if found is None:
            found = self._setups[task_id] = self._compute_indirect_setups(task_id)
        return found

    def _compute_indirect_setups(self, task_id: str) -> tuple[str, ...]:
        task = self.tasks[task_id]
        if task.is_teardown or not self.has_setups:
            return ()
        direct = set(self.upstreams[task_id])
        teardowns_below = {d for d in self.descendants(task_id) if self.tasks[d].is_teardown}
        relevant: list[str] = []
        for a in self.ancestors(task_id):
            if not self.tasks[a].is_setup or a in direct:
                continue
            own_teardowns = {d for d in self.downstreams[a] if self.tasks[d].is_teardown}
            if not own_teardowns or own_teardowns & teardowns_below:
                relevant.append(a)
        return tuple(relevant)

    def setup_dependents(self, task_id: str) -> tuple[str, ...]:
        """The tasks for which ``task_id`` is an indirect setup (re-evaluated when it
        finishes)."""
        if not self.has_setups:
            return ()
        if self._setup_dependents is None:
            rev: dict[str, list[str]] = {}
            for t in self.dag.tasks:
                for s in self.indirect_setups(t.task_id):
                    rev.setdefault(s, []).append(t.task_id)
            self._setup_dependents = {k: tuple(v) for k, v in rev.items()}
        return self._setup_dependents.get(task_id, ())


@dataclass(frozen=True, slots=True)
class CountPlan:
    """Which tasks to sum for a task's upstream counts (see :meth:`Topology.count_plan`).
    ``negate``: the upstreams are every task but ``tasks``. ``setups``: the setup tasks
    among the upstreams."""

    tasks: tuple[str, ...]
    negate: bool
    setups: tuple[str, ...]


def _closure(start: str, edges: dict[str, tuple[str, ...]]) -> set[str]:
    seen: set[str] = set()
    stack = list(edges[start])
    while stack:
        t = stack.pop()
        if t not in seen:
            seen.add(t)
            stack.extend(edges[t])
    return seen


def _effective_leaves(
    ordered: Iterable[SerializedTask],
    tasks: dict[str, SerializedTask],
    downstreams: dict[str, tuple[str, ...]],
) -> tuple[str, ...]:
    """The tasks whose states decide the run's (Airflow's ``_tis_for_dagrun_state``):
    teardowns are ignored, on both sides, unless they set ``on_failure_fail_dagrun``."""

    def ignorable(t: SerializedTask) -> bool:
        return t.is_teardown and not t.on_failure_fail_dagrun

    ordered = list(ordered)
    leaves = tuple(
        t.task_id
        for t in ordered
        if not ignorable(t) and all(ignorable(tasks[d]) for d in downstreams[t.task_id])
    )
    if not leaves:  # a DAG of teardowns only
        leaves = tuple(t.task_id for t in ordered if not downstreams[t.task_id])
    return leaves
