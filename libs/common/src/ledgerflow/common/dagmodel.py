"""The serialized, data-only form of a DAG.

A DAG file is user code; the scheduler must never import it (Airflow's ADR 0001 says the
same). Parsing a file produces these models, which travel inside ``DagVersionPublished``
events. The scheduler decides from them alone; the executor re-imports the file's source
(carried by the same event) only to run a task's callable.

This module imports only pydantic and the standard library.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

TriggerRule = Literal["all_success"]
"""Trigger rules the core implements so far (the authoring issue adds the rest)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SerializedTask(_Frozen):
    """One task of a DAG, as data.

    ``upstream_task_ids`` is the only dependency information the core uses; the
    downstream side is derived. ``lineno`` is the line in the DAG file where the task
    was created (for error messages and the UI's code view).
    """

    task_id: str
    operator: str = Field(description="Operator class name, e.g. 'PythonOperator'.")
    upstream_task_ids: tuple[str, ...] = ()
    trigger_rule: TriggerRule = "all_success"
    retries: int = Field(default=0, ge=0)
    retry_delay_seconds: float = Field(default=300.0, ge=0)
    queue: str = "default"
    pool: str = "default_pool"
    priority_weight: int = 1
    execution_timeout_seconds: float | None = None
    owner: str = "airflow"
    doc: str | None = None
    lineno: int | None = None
    # Operator-specific, display-only fields (e.g. bash_command, python_callable name).
    template_fields: dict[str, Any] = Field(default_factory=dict)


class SerializedDag(_Frozen):
    """A DAG as data: what the scheduler needs and what the UI shows."""

    dag_id: str
    fileloc: str
    description: str | None = None
    schedule: str | None = None
    start_date: datetime | None = None
    tags: tuple[str, ...] = ()
    owner: str = "airflow"
    is_paused_upon_creation: bool = False
    params: dict[str, Any] = Field(default_factory=dict)
    max_active_runs: int = 16
    max_active_tasks: int = 16
    lineno: int | None = None
    tasks: tuple[SerializedTask, ...]

    def task(self, task_id: str) -> SerializedTask:
        """The task with this id; ``KeyError`` if it does not exist."""
        for t in self.tasks:
            if t.task_id == task_id:
                return t
        raise KeyError(task_id)

    @property
    def task_ids(self) -> tuple[str, ...]:
        return tuple(t.task_id for t in self.tasks)

    def downstream_task_ids(self, task_id: str) -> tuple[str, ...]:
        """Tasks that list ``task_id`` as an upstream, in declaration order."""
        return tuple(t.task_id for t in self.tasks if task_id in t.upstream_task_ids)
