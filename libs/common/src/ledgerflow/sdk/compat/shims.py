"""Small stand-ins for Airflow names that have no ledgerflow equivalent of their own."""

from __future__ import annotations

import os
from typing import Any, NamedTuple


class AirflowParsingContext(NamedTuple):
    """What ``get_parsing_context()`` returns: the DAG and task being run, if any."""

    dag_id: str | None
    task_id: str | None


def get_parsing_context() -> AirflowParsingContext:
    """The DAG and task the file is loaded for (both ``None`` when parsing). The task
    runner sets ``_AIRFLOW_PARSING_CONTEXT_DAG_ID`` / ``_AIRFLOW_PARSING_CONTEXT_TASK_ID``,
    as Airflow does, so a DAG file can build only what that task needs."""
    return AirflowParsingContext(
        dag_id=os.environ.get("_AIRFLOW_PARSING_CONTEXT_DAG_ID"),
        task_id=os.environ.get("_AIRFLOW_PARSING_CONTEXT_TASK_ID"),
    )


def __getattr__(name: str) -> Any:
    # ``TaskInstance`` and ``DagRun`` are mostly used in type hints; they are the task
    # runner's classes when they exist, placeholders otherwise.
    if name in ("TaskInstance", "DagRun"):
        try:
            from ledgerflow.sdk import context

            value = getattr(
                context, "RuntimeTaskInstance" if name == "TaskInstance" else "DagRunInfo"
            )
        except (ImportError, AttributeError):
            value = type(name, (), {"__doc__": f"Placeholder for Airflow's {name}."})
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
