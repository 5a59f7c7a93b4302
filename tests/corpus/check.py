"""Compare what a run produced with its :class:`~tests.corpus.expectations.Expectation`.

Both the local check (``ledgerflow dags test``) and the end-to-end check (the real
system, through the API) reduce a run to an :class:`ObservedRun` and call
:func:`problems`, which lists every difference at once (one failing assertion per DAG
would hide the rest).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .expectations import Expectation, TaskRef, resolve

MISSING = object()
"""An XCom that does not exist (as opposed to one whose value is null)."""


@dataclass
class ObservedRun:
    """A finished run as seen from outside."""

    run_id: str
    state: str
    # (task_id, map_index) -> (state, try_number)
    task_instances: Mapping[tuple[str, int], tuple[str | None, int]]
    # (task_id, map_index, key) -> value; fetch(...) returns MISSING for no XCom
    xcom: Callable[[str, int, str], Any]
    # (task_id, map_index, try_number) -> the attempt's log text
    log: Callable[[str, int, int], str]
    # task_id -> direct upstream ids, when known
    upstream: Mapping[str, frozenset[str]] | None = None
    # (task_id, map_index) -> API fields, when known
    ti_fields: Mapping[tuple[str, int], Mapping[str, Any]] | None = None


def problems(exp: Expectation, run: ObservedRun) -> list[str]:
    """Every way ``run`` differs from ``exp`` (empty when it matches)."""
    out: list[str] = []
    if run.state != exp.run_state:
        out.append(f"run state: expected {exp.run_state}, got {run.state}")

    expected_states = exp.task_states()
    got_states = {k: v[0] for k, v in run.task_instances.items()}
    for key in sorted(set(expected_states) | set(got_states)):
        want, got = expected_states.get(key), got_states.get(key)
        if want != got:
            label = key[0] if key[1] < 0 else f"{key[0]}[{key[1]}]"
            out.append(f"task {label}: expected {want}, got {got}")

    for text, tries in exp.tries.items():
        ref = TaskRef.parse(text)
        got_try = run.task_instances.get((ref.task_id, ref.map_index), (None, None))[1]
        if got_try != tries:
            out.append(f"task {text}: expected try {tries}, got try {got_try}")

    for text, value in exp.xcoms.items():
        ref = TaskRef.parse(text)
        want = resolve(value, run_id=run.run_id)
        try:
            got = run.xcom(ref.task_id, ref.map_index, ref.key)
        except Exception as exc:  # noqa: BLE001 - report, do not stop at the first
            out.append(f"xcom {text}: could not read it: {exc!r}")
            continue
        if want is None and (got is MISSING or got is None):
            continue
        if got is MISSING:
            out.append(f"xcom {text}: expected {want!r}, got no XCom")
        elif got != want:
            out.append(f"xcom {text}: expected {want!r}, got {got!r}")

    for mapping, present in ((exp.logs, True), (exp.logs_absent, False)):
        for text, needles in mapping.items():
            ref = TaskRef.parse(text)
            final_try = run.task_instances.get((ref.task_id, ref.map_index), (None, 0))[1]
            tries = [ref.try_number] if ref.try_number else [final_try]
            if not present and ref.try_number is None:
                tries = list(range(1, final_try + 1))  # absent from every attempt
            for try_number in tries:
                if not try_number:
                    out.append(f"log {text}: the task never ran")
                    continue
                try:
                    log = run.log(ref.task_id, ref.map_index, try_number)
                except Exception as exc:  # noqa: BLE001
                    out.append(f"log {text} (try {try_number}): could not read it: {exc!r}")
                    continue
                for needle in needles:
                    needle = resolve(needle, run_id=run.run_id)
                    if (needle in log) != present:
                        what = "missing" if present else "present but must not be"
                        tail = " | ".join(log.strip().splitlines()[-6:])
                        out.append(
                            f"log {text} (try {try_number}): {what}: {needle!r}; log ends: {tail}"
                        )

    if run.upstream is not None:
        for task_id, ups in exp.upstream.items():
            got_ups = run.upstream.get(task_id)
            if got_ups != ups:
                out.append(f"upstream of {task_id}: expected {sorted(ups)}, got {got_ups}")

    if run.ti_fields is not None:
        for text, fields in exp.ti_fields.items():
            ref = TaskRef.parse(text)
            got_fields = run.ti_fields.get((ref.task_id, ref.map_index), {})
            for name, value in fields.items():
                if got_fields.get(name) != value:
                    out.append(
                        f"task {text}: {name} expected {value!r}, got {got_fields.get(name)!r}"
                    )
    return out
