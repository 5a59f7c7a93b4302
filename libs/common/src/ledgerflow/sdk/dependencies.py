"""Dependencies between tasks: ``>>``, ``<<``, ``chain``, ``cross_downstream``,
``chain_linear``.

Anything that can take part in a dependency (a task, a task's output, a task group, an
edge label, or a list of those) implements ``_dependency_nodes(as_downstream)``: the
tasks that an edge reaches when the object is on the downstream side (a group's roots)
or leaves from when it is on the upstream side (a group's leaves). Edges are recorded
on the tasks, with the line of the user's code that declared them.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from ledgerflow.sdk import _source

if TYPE_CHECKING:
    from ledgerflow.sdk.baseoperator import BaseOperator

# Orders edges across the whole process, so a cycle can name the edge that closed it.
_edge_seq = itertools.count()


class Edge(NamedTuple):
    """How an upstream dependency was declared."""

    seq: int
    lineno: int | None


class DependencyMixin:
    """``>>``, ``<<``, ``set_upstream`` and ``set_downstream`` for anything that has
    ``_dependency_nodes``."""

    def _dependency_nodes(self, as_downstream: bool) -> list[Any]:
        raise NotImplementedError

    @property
    def roots(self) -> list[BaseOperator]:
        return self._dependency_nodes(True)

    @property
    def leaves(self) -> list[BaseOperator]:
        return self._dependency_nodes(False)

    def set_downstream(self, other: Any, edge_modifier: Any = None) -> None:
        """Make ``other`` (a task, output, group, label or list) run after this."""
        _, lineno = _source.user_location()
        if edge_modifier is not None:
            connect(self, edge_modifier, lineno)
            connect(edge_modifier, other, lineno)
        else:
            connect(self, other, lineno)

    def set_upstream(self, other: Any, edge_modifier: Any = None) -> None:
        """Make this run after ``other``."""
        _, lineno = _source.user_location()
        if edge_modifier is not None:
            connect(other, edge_modifier, lineno)
            connect(edge_modifier, self, lineno)
        else:
            connect(other, self, lineno)

    def update_relative(self, other: Any, upstream: bool = True, edge_modifier: Any = None) -> None:
        """Airflow's hook; dependencies here live on the tasks, so nothing to do."""

    def __rshift__(self, other: Any) -> Any:
        _, lineno = _source.user_location()
        connect(self, other, lineno)
        return other

    def __lshift__(self, other: Any) -> Any:
        _, lineno = _source.user_location()
        connect(other, self, lineno)
        return other

    def __rrshift__(self, other: Any) -> Any:
        # [a, b] >> self
        _, lineno = _source.user_location()
        connect(other, self, lineno)
        return self

    def __rlshift__(self, other: Any) -> Any:
        # [a, b] << self
        _, lineno = _source.user_location()
        connect(self, other, lineno)
        return self


def nodes(target: Any, as_downstream: bool) -> list[Any]:
    """The tasks (and labels) an edge to or from ``target`` touches."""
    if isinstance(target, DependencyMixin):
        return target._dependency_nodes(as_downstream)
    if isinstance(target, list | tuple | set | frozenset):
        found: list[Any] = []
        for item in target:
            found.extend(nodes(item, as_downstream))
        return found
    raise TypeError(
        f"cannot set a dependency on {target!r}: expected a task, a task's output, a task "
        "group, a label or a list of those"
    )


def connect(upstream: Any, downstream: Any, lineno: int | None) -> None:
    """``upstream >> downstream`` for any dependency targets."""
    from ledgerflow.sdk.edges import EdgeModifier

    ups = nodes(upstream, as_downstream=False)
    downs = nodes(downstream, as_downstream=True)
    for up in ups:
        for down in downs:
            if isinstance(down, EdgeModifier):
                if isinstance(up, EdgeModifier):
                    raise TypeError("two edge labels cannot follow each other")
                down._add_upstream(up, lineno)
            elif isinstance(up, EdgeModifier):
                up._add_downstream(down, lineno)
            else:
                link(up, down, lineno)


def link(upstream: BaseOperator, downstream: BaseOperator, lineno: int | None) -> None:
    """Record ``upstream >> downstream``, joining a DAG-less task to the other's DAG."""
    up_dag, down_dag = upstream._dag, downstream._dag
    if up_dag is not down_dag:
        if up_dag is None:
            down_dag.add_task(upstream)  # type: ignore[union-attr]
        elif down_dag is None:
            up_dag.add_task(downstream)
        else:
            raise ValueError(
                f"cannot link {upstream!r} (DAG {up_dag.dag_id!r}) and {downstream!r} "
                f"(DAG {down_dag.dag_id!r}): tasks of different DAGs"
            )
    if upstream.task_id in downstream.upstream_edges:
        return
    downstream.upstream_edges[upstream.task_id] = Edge(next(_edge_seq), lineno)
    upstream._downstream[downstream.task_id] = None


def chain(*tasks: Any) -> None:
    """Set each element downstream of the one before.

    ``chain(a, [b, c], d)`` is ``a >> [b, c] >> d``. Two adjacent lists must have the same
    length and are linked pairwise: ``chain([a, b], [c, d])`` is ``a >> c`` and ``b >> d``.
    Elements may be tasks, outputs, task groups or labels (Airflow's ``chain``).
    """
    _, lineno = _source.user_location()
    for up, down in itertools.pairwise(tasks):
        if isinstance(up, DependencyMixin) or isinstance(down, DependencyMixin):
            connect(up, down, lineno)
            continue
        if not isinstance(up, Sequence) or not isinstance(down, Sequence):
            raise TypeError(f"Chain not supported between instances of {type(up)} and {type(down)}")
        if len(up) != len(down):
            raise ValueError(
                "Chain not supported for different length Iterable. "
                f"Got {len(up)} and {len(down)}. (chain() needs adjacent lists of equal length)"
            )
        for u, d in zip(up, down, strict=True):
            connect(u, d, lineno)


def cross_downstream(from_tasks: Sequence[Any], to_tasks: Any) -> None:
    """Every task of ``from_tasks`` upstream of every task of ``to_tasks``."""
    _, lineno = _source.user_location()
    for task in from_tasks:
        connect(task, to_tasks, lineno)


def chain_linear(*elements: Any) -> None:
    """Each element (task or list) fully upstream of the next: ``chain_linear(a, [b, c], [d,
    e])`` is ``a >> [b, c]``, ``b >> [d, e]``, ``c >> [d, e]``."""
    from ledgerflow.sdk.edges import EdgeModifier

    if not elements:
        raise ValueError("No tasks provided; nothing to do.")
    _, lineno = _source.user_location()
    previous: Any = None
    linked = False
    for current in elements:
        if isinstance(current, EdgeModifier):
            raise ValueError("Labels are not supported by chain_linear")
        if previous is not None:
            for task in previous:
                connect(task, current, lineno)
                linked = True
        previous = [current] if isinstance(current, DependencyMixin) else current
    if not linked:
        raise ValueError("No dependencies were set. Did you forget to expand with `*`?")
