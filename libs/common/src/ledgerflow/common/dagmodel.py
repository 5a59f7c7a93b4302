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


class TimetableSpec(_Frozen):
    """A DAG's schedule as data (issue 6): what ``schedule=`` resolved to when the file
    was parsed. The pure core (``core/timetables.py``) computes runs from it; the SDK
    builds it from a cron string, a preset, a ``timedelta`` or a timetable object.

    Kinds, with Airflow 3's meaning:

    - ``cron_trigger``: ``CronTriggerTimetable(expression, timezone, interval=...)``, also
      what a cron string or preset (``@daily``...) means by default in Airflow 3; a run
      fires at each cron time, its logical date is that time, its data interval is
      ``[time - interval_seconds, time]``.
    - ``cron_data_interval``: ``CronDataIntervalTimetable``; a run covers the interval
      between two cron times and starts when it ends (logical date = interval start).
    - ``multiple_cron_trigger``: ``MultipleCronTriggerTimetable(*expressions, ...)``.
    - ``delta_trigger`` / ``delta_data_interval``: a ``timedelta`` schedule
      (``DeltaTriggerTimetable`` by default, ``DeltaDataIntervalTimetable``), every
      ``delta_seconds`` from ``start_date``.
    - ``events``: ``EventsTimetable(event_dates, restrict_to_events)``.
    - ``once`` (``@once``), ``continuous`` (``@continuous``).
    - ``asset``: runs triggered by asset events (``SerializedDag.asset_condition``);
      ``asset_or_time`` also has a time component in the fields above (``time_kind``).
    """

    kind: Literal[
        "cron_trigger",
        "cron_data_interval",
        "multiple_cron_trigger",
        "delta_trigger",
        "delta_data_interval",
        "events",
        "once",
        "continuous",
        "asset",
        "asset_or_time",
    ]
    expression: str | None = None
    expressions: tuple[str, ...] = ()
    delta_seconds: float | None = Field(default=None, gt=0)
    interval_seconds: float = Field(default=0.0, ge=0)
    timezone: str = "UTC"
    run_immediately: bool = False
    # ``run_immediately=timedelta(...)``: with no start_date, run the last past tick if
    # it is at most this old (None with run_immediately False: Airflow's 10% rule).
    run_immediately_seconds: float | None = Field(default=None, ge=0)
    events: tuple[datetime, ...] = ()
    restrict_to_events: bool = False
    # For ``asset_or_time``: the kind of the time part (one of the time kinds above).
    time_kind: str | None = None
    description: str | None = Field(
        default=None, description="The schedule in words, for the UI (e.g. 'At 00:00')."
    )


class AssetRef(_Frozen):
    """An asset (``Asset(name, uri, group, extra)``) or an asset alias, as data."""

    kind: Literal["asset", "alias"] = "asset"
    name: str
    uri: str = ""
    group: str = "asset"
    extra: dict[str, Any] = Field(default_factory=dict)
    watchers: tuple[WatcherSpec, ...] = ()


class WatcherSpec(_Frozen):
    """Runs triggered by messages on an external Kafka topic (issue 6): Airflow 3's
    ``AssetWatcher(name, trigger=MessageQueueTrigger(...))`` or ledgerflow's own
    ``KafkaMessageTrigger``. Each matching message becomes an asset event of the asset
    that owns the watcher (with the message in its ``extra``) and triggers one run."""

    name: str
    kind: Literal["kafka"] = "kafka"
    bootstrap_servers: str | None = Field(
        default=None, description="None: the ledgerflow cluster (LEDGERFLOW_KAFKA_BOOTSTRAP)."
    )
    topics: tuple[str, ...]
    filter: str | None = Field(
        default=None, description="A safe expression over the message (key, value, headers...)."
    )
    value_format: Literal["json", "text", "bytes"] = "json"
    consumer_config: dict[str, Any] = Field(default_factory=dict)


class AssetCondition(_Frozen):
    """``schedule=[a, b]`` (all), ``a & b``, ``a | b``, nested; leaves are assets or
    aliases."""

    op: Literal["asset", "alias", "all", "any"]
    asset: AssetRef | None = None
    children: tuple[AssetCondition, ...] = ()


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
    # Data-aware scheduling (issue 6): assets (and aliases) the task produces / reads.
    outlets: tuple[AssetRef, ...] = ()
    inlets: tuple[AssetRef, ...] = ()


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
    # Issue 6: the resolved schedule (None = no schedule: manual/API runs only), the
    # asset condition of an asset-scheduled DAG, and auto-pause after N failed runs.
    timetable: TimetableSpec | None = None
    asset_condition: AssetCondition | None = None
    max_consecutive_failed_dag_runs: int = Field(default=0, ge=0)
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
