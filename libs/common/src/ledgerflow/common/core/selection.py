"""Which task instances a clear or a mark touches: Airflow's rules, as a pure function.

Shared by the scheduler (on its state) and the API (on the projection, for dry runs),
so what a dry run lists is what the command does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from ledgerflow.common.core.state import TIKey
from ledgerflow.common.core.topology import Topology

FAILED_STATES = frozenset({"failed", "upstream_failed"})
"""Airflow's ``State.failed_states``: what ``only_failed`` clears."""

TaskSpec = str | tuple[str, int] | Sequence[object]


def _named(task_ids: Iterable[TaskSpec] | None, topo: Topology) -> dict[str, set[int] | None]:
    """Task id -> the map indexes named (None: every index)."""
    if task_ids is None:
        return dict.fromkeys(topo.tasks)
    named: dict[str, set[int] | None] = {}
    for spec in task_ids:
        if isinstance(spec, str):
            task_id, index = spec, None
        else:
            task_id, index = str(spec[0]), int(spec[1])  # type: ignore[call-overload]
        if task_id not in topo.tasks:
            continue
        if index is None:
            named[task_id] = None
        elif task_id not in named or named[task_id] is not None:
            indexes = named.get(task_id) or set()
            indexes.add(index)
            named[task_id] = indexes
    return named


def related_tasks(
    topo: Topology,
    task_ids: Iterable[TaskSpec] | None,
    *,
    include_upstream: bool = False,
    include_downstream: bool = False,
) -> dict[str, set[int] | None]:
    """The named tasks (with the map indexes named) plus, with every index, their
    ancestors and/or descendants."""
    named = _named(task_ids, topo)
    extra: set[str] = set()
    for task_id in named:
        if include_upstream:
            extra.update(topo.ancestors(task_id))
        if include_downstream:
            extra.update(topo.descendants(task_id))
    for task_id in extra:
        named[task_id] = None
    return named


def clear_selection(
    topo: Topology,
    instances: Mapping[TIKey, str | None],
    *,
    task_ids: Iterable[TaskSpec] | None = None,
    only_failed: bool = False,
    only_running: bool = False,
    include_upstream: bool = False,
    include_downstream: bool = False,
) -> list[TIKey]:
    """The instances of one run a clear touches, in declaration order then map index.

    ``instances`` maps every task instance of the run to its state (None: not yet
    decided). ``only_failed`` keeps failed and upstream_failed instances,
    ``only_running`` running ones (Airflow's ``clearTaskInstances``)."""
    wanted = related_tasks(
        topo, task_ids, include_upstream=include_upstream, include_downstream=include_downstream
    )
    out: list[TIKey] = []
    for (task_id, map_index), state in instances.items():
        if task_id not in wanted:
            continue
        indexes = wanted[task_id]
        if indexes is not None and map_index not in indexes:
            continue
        if only_failed and state not in FAILED_STATES:
            continue
        if only_running and state != "running":
            continue
        out.append((task_id, map_index))
    out.sort(key=lambda k: (topo.order.get(k[0], -1), k[1]))
    return out
