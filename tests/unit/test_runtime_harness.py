"""Helpers for the runtime tests: run one attempt in this process through
``execute_request`` (what a pre-forked worker and ``ledgerflow dags test`` do).

The subprocess protocol itself (stdin, fd 3, exit codes, signals) is covered by
``test_runner.py``; everything else runs in-process, which is much faster.
"""

from __future__ import annotations

import textwrap
from typing import Any

from ledgerflow.sdk.runner import execute_request

LOGICAL_DATE = "2024-05-01T12:30:00+00:00"


def request_for(source: str, task_id: str, /, dag_id: str = "t", **fields: Any) -> dict[str, Any]:
    """A runner request for ``task_id`` of the DAG ``dag_id`` defined by ``source``."""
    request: dict[str, Any] = {
        "source": textwrap.dedent(source),
        "filename": f"dags/{dag_id}.py",
        "extra_files": {},
        "dag_id": dag_id,
        "task_id": task_id,
        "run_id": "manual__1",
        "map_index": -1,
        "try_number": 1,
        "max_tries": 1,
        "conf": {},
        "logical_date": LOGICAL_DATE,
        "data_interval_start": "2024-04-30T12:30:00+00:00",
        "data_interval_end": LOGICAL_DATE,
        "run_type": "manual",
        "xcoms": [],
        "variables": {},
        "connections": {},
        "xcom_max_bytes": 256 * 1024,
    }
    request.update(fields)
    return request


def run(source: str, task_id: str, /, dag_id: str = "t", **fields: Any) -> dict[str, Any]:
    """The outcome of running ``task_id`` in this process."""
    return execute_request(request_for(source, task_id, dag_id, **fields))


def xcom(task_id: str, value: Any, key: str = "return_value", map_index: int = -1) -> dict:
    return {"task_id": task_id, "map_index": map_index, "key": key, "value": value}
