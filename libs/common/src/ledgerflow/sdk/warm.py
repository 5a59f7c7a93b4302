"""A DAG file loaded once and kept warm for many attempts (docs/adr/0017-warm-dags.md).

An executor's fork server keeps a *zygote* per DAG file: a process forked from it that
loaded the file once (with the variables and connections the attempts get) and then
forks every attempt of that file's tasks, so an attempt does not write and run the DAG
file again. This module is the runner's side of it: the key that says which load an
attempt may use, the load itself (in the zygote), and the lookup (in the attempt).

The key covers everything the load can depend on that an attempt's request carries:
the source, the file name, the extra files, the variables and the connections. An
attempt whose request differs in any of them loads the file itself, as without a
zygote.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# The request fields a load reads (and so the key covers).
LOAD_FIELDS = ("source", "filename", "extra_files", "variables", "connections")


@dataclass(frozen=True)
class WarmDags:
    """The DAGs a zygote loaded, by dag_id, and the folder their file lives in."""

    key: str
    dags: dict[str, Any]
    folder: str


_WARM: WarmDags | None = None


def load_fields(request: dict[str, Any]) -> dict[str, Any]:
    """The part of an attempt's request a zygote needs to load its DAG file."""
    return {f: request.get(f) for f in LOAD_FIELDS}


def warm_key(request: dict[str, Any]) -> str:
    """Which load ``request`` may use: a digest of its :data:`LOAD_FIELDS`."""
    import hashlib

    doc = json.dumps(
        [request.get(f) for f in LOAD_FIELDS], sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(doc.encode()).hexdigest()


def preload(load: dict[str, Any]) -> WarmDags:
    """In a zygote: load the DAG file of ``load`` (see :func:`load_fields`) once, as an
    attempt would, and keep it for the attempts forked from here. Raises what the
    runner's own load raises (a DAG file error, a bad request)."""
    global _WARM
    from ledgerflow.sdk import runner
    from ledgerflow.sdk.runner_support import make_private_dir

    variables, connections = load.get("variables"), load.get("connections")
    if variables or connections:
        from ledgerflow.sdk import models

        models.configure(variables, connections)
    runner._install_airflow_compat()
    folder = make_private_dir()
    dag_path = runner.write_dag_files(folder, load)
    dags = runner.load_dag_file(str(load["source"]), dag_path)
    _WARM = WarmDags(key=warm_key(load), dags={d.dag_id: d for d in dags}, folder=folder)
    return _WARM


def preloaded(request: dict[str, Any]) -> WarmDags | None:
    """The DAGs this process loaded ahead, if they were loaded from exactly this
    request's file, variables and connections; None otherwise (load it yourself)."""
    if _WARM is None:
        return None
    return _WARM if warm_key(request) == _WARM.key else None
