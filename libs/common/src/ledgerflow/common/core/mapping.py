"""How many map indexes a mapped task gets (Airflow's ``get_mapped_ti_count``).

A literal source has its length in the DAG; an XCom source of an unmapped upstream has
the length of the value it pushed (a list or a dict, anything else cannot be mapped
over); an XCom source that is itself a mapped task has as many values as it has map
indexes that pushed one, once all of them are done. ``expand`` maps over the cross
product (the product of the lengths), ``expand_kwargs`` over its single source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ledgerflow.common.core.state import Run
from ledgerflow.common.core.topology import Topology
from ledgerflow.common.dagmodel import MapSpec

MapVerdict = Literal["ready", "wait", "missing", "invalid"]


@dataclass(frozen=True, slots=True)
class MapLength:
    """``ready`` with ``length``; ``wait`` (a source is not done); ``missing`` (a source
    finished without a value: upstream_failed, as Airflow); ``invalid`` (a value that
    cannot be mapped over: the mapped task fails)."""

    verdict: MapVerdict
    length: int = 0
    reason: str = ""


def map_length(spec: MapSpec, run: Run, topo: Topology) -> MapLength:
    """The number of map indexes, if every source is known."""
    lengths: list[int] = []
    waiting = False
    missing: list[str] = []
    for source in spec.sources:
        if source.literal_length is not None:
            lengths.append(source.literal_length)
            continue
        up = source.task_id
        if up is None or up not in topo.tasks:
            return MapLength(
                "invalid", reason=f"map argument {source.arg!r} has no source task in the DAG"
            )
        if topo.tasks[up].mapped is not None:
            got = _mapped_source_length(run, up, source.key)
        else:
            got = _plain_source_length(run, up, source.key, source.arg)
        if got.verdict == "invalid":
            return got
        if got.verdict == "wait":
            waiting = True
        elif got.verdict == "missing":
            missing.append(got.reason)
        else:
            lengths.append(got.length)
    if missing:
        return MapLength("missing", reason="; ".join(missing))
    if waiting:
        return MapLength("wait")
    if spec.kind == "expand_kwargs" and len(lengths) != 1:
        return MapLength("invalid", reason="expand_kwargs needs exactly one source")
    total = 1
    for n in lengths:
        total *= n
    return MapLength("ready", length=total)


def _plain_source_length(run: Run, task_id: str, key: str, arg: str) -> MapLength:
    ti = run.ti(task_id)
    if not ti.finished:
        return MapLength("wait")
    if ti.state != "success":
        return MapLength("missing", reason=f"{task_id} is {ti.state}: no value to map over")
    value = ti.xcom(key)
    if isinstance(value, list | dict):
        return MapLength("ready", length=len(value))
    what = "no value" if value is None else f"a {type(value).__name__}"
    return MapLength(
        "invalid",
        reason=(
            f"cannot map over XCom {key!r} of {task_id} (argument {arg!r}): it is {what}, "
            "not a list or a dict"
        ),
    )


def _mapped_source_length(run: Run, task_id: str, key: str) -> MapLength:
    n = run.map_lengths.get(task_id)
    if n is None:
        placeholder = run.ti(task_id)
        if placeholder.finished:
            return MapLength(
                "missing", reason=f"{task_id} is {placeholder.state}: no values to map over"
            )
        return MapLength("wait")
    counts = run.counts.get(task_id)
    done = counts.done if counts is not None else 0
    if done < run.instance_count(task_id):
        return MapLength("wait")
    with_value = sum(
        1
        for i in range(n)
        if (ti := run.ti(task_id, i)).state == "success" and ti.xcom(key) is not None
    )
    return MapLength("ready", length=with_value)
