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

TriggerRule = Literal[
    "all_success",
    "all_failed",
    "all_done",
    "all_done_min_one_success",
    "all_done_setup_success",
    "all_skipped",
    "one_success",
    "one_failed",
    "one_done",
    "none_failed",
    "none_failed_min_one_success",
    "none_skipped",
    "always",
]
"""Airflow's trigger rules (``airflow.utils.trigger_rule.TriggerRule`` values)."""

SensorMode = Literal["poke", "reschedule"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MapSource(_Frozen):
    """Where one mapped argument's values come from.

    Either a literal collection in the DAG file (``literal_length`` is its length; the
    values themselves are re-read from the file by the runner), or the XCom of an
    upstream task (``task_id``/``key``): its value must be a list or dict, and when that
    upstream is itself mapped, the value is the list of all its map indexes' values.
    """

    arg: str = Field(description="Argument name ('' for expand_kwargs' single source).")
    literal_length: int | None = Field(default=None, ge=0)
    task_id: str | None = None
    key: str = "return_value"


class MapSpec(_Frozen):
    """A mapped task (``partial().expand()`` / ``expand_kwargs()``).

    ``expand`` with several arguments maps over their cross product (Airflow), so the
    number of map indexes is the product of the sources' lengths; ``expand_kwargs`` has
    exactly one source (a list of dicts). The core expands the task once every XCom
    source has succeeded; zero indexes means the task is skipped.
    """

    kind: Literal["expand", "expand_kwargs"] = "expand"
    sources: tuple[MapSource, ...]


class SensorSpec(_Frozen):
    """Sensor settings the core needs (poke mode loops inside the attempt; reschedule
    mode ends each attempt with a reschedule date and the core requeues it)."""

    mode: SensorMode = "poke"
    poke_interval_seconds: float = Field(default=60.0, ge=0)
    timeout_seconds: float = Field(default=7 * 24 * 3600.0, ge=0)
    soft_fail: bool = False
    exponential_backoff: bool = False
    max_wait_seconds: float | None = None


class SerializedTaskGroup(_Frozen):
    """A task group (ids prefixed with the group id, as in Airflow). Display only."""

    group_id: str
    parent_group_id: str | None = None
    tooltip: str | None = None
    prefix_group_id: bool = True


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
    # --- authoring parity (ADR 0006) ---
    retry_exponential_backoff: float = Field(
        default=0.0,
        ge=0,
        description="0 = off; otherwise the backoff multiplier (Airflow's True = 2).",
    )
    max_retry_delay_seconds: float | None = Field(default=None, ge=0)
    task_group_id: str | None = None
    is_setup: bool = False
    is_teardown: bool = False
    on_failure_fail_dagrun: bool = False
    mapped: MapSpec | None = None
    sensor: SensorSpec | None = None
    depends_on_past: bool = False
    ignore_first_depends_on_past: bool = True
    wait_for_downstream: bool = False
    weight_rule: Literal["downstream", "upstream", "absolute"] = "downstream"
    max_active_tis_per_dag: int | None = None
    max_active_tis_per_dagrun: int | None = None
    pool_slots: int = Field(default=1, ge=1)
    # Names (for the UI): which task-level callbacks are set.
    callbacks: tuple[str, ...] = ()
    # Airflow's flag for branch / short-circuit operators (the UI marks them).
    is_branch: bool = False


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
    # JSON schema per param (``Param(default, type=..., ...)``), with "description" and
    # "title" where given. A trigger's conf is validated against these (ADR 0006).
    param_schemas: dict[str, dict[str, Any]] = Field(default_factory=dict)
    task_groups: tuple[SerializedTaskGroup, ...] = ()
    template_searchpath: tuple[str, ...] = ()
    end_date: datetime | None = None
    catchup: bool = False
    dagrun_timeout_seconds: float | None = None
    doc_md: str | None = None
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
