"""Request and response bodies, with Airflow REST API v2 field names and states.

Timestamps are written as ISO 8601 with offset and microseconds, always
(``2026-11-24T01:02:03.000123+00:00``), so clients can compare them as strings.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


Timestamp = Annotated[datetime, PlainSerializer(_iso, return_type=str, when_used="json")]
"""A timestamp as Airflow writes it: ISO 8601, UTC offset, microseconds."""

TaskInstanceState = Literal[
    "removed",
    "scheduled",
    "queued",
    "running",
    "success",
    "restarting",
    "failed",
    "up_for_retry",
    "up_for_reschedule",
    "upstream_failed",
    "skipped",
    "deferred",
]
"""Airflow's ``TaskInstanceState`` values (ledgerflow produces all but removed,
restarting and deferred)."""
DagRunState = Literal["queued", "running", "success", "failed"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- auth
class TokenRequest(_Body):
    username: str
    password: str


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"


# --------------------------------------------------------------------------- DAG files
class DagFileBody(_Body):
    """A DAG file as JSON (the endpoint also takes a multipart ``file``), with the
    template files it uses (``.sql``, ``.sh``, ...) keyed by their path relative to the
    DAG file's directory."""

    filename: str = Field(min_length=1, max_length=1024)
    content: str
    extra_files: dict[str, str] = Field(default_factory=dict)


class PublishedDag(BaseModel):
    dag_id: str
    version_id: str


class DagFileResponse(BaseModel):
    dags: list[PublishedDag]


class DagParseErrorDetail(BaseModel):
    message: str
    filename: str
    lineno: int | None
    kind: str


# --------------------------------------------------------------------------- DAGs
class DagTag(BaseModel):
    name: str
    dag_id: str


class DagResponse(BaseModel):
    dag_id: str
    dag_display_name: str
    is_paused: bool
    is_stale: bool = False
    has_import_errors: bool = False
    last_parsed_time: Timestamp | None
    fileloc: str | None
    relative_fileloc: str | None
    description: str | None
    timetable_summary: str | None
    # Issue 6: the schedule in words and the next scheduled run (None when paused or
    # not time-scheduled), as Airflow's DAGResponse.
    timetable_description: str | None = None
    next_dagrun_logical_date: Timestamp | None = None
    next_dagrun_data_interval_start: Timestamp | None = None
    next_dagrun_data_interval_end: Timestamp | None = None
    next_dagrun_run_after: Timestamp | None = None
    tags: list[DagTag]
    owners: list[str]
    max_active_runs: int | None
    max_active_tasks: int | None
    latest_version_id: str | None
    latest_version_number: int | None


class DagCollectionResponse(BaseModel):
    dags: list[DagResponse]
    total_entries: int


class DagPatchBody(_Body):
    is_paused: bool


# --------------------------------------------------------------------------- DAG runs
class TriggerDagRunBody(_Body):
    dag_run_id: str | None = Field(default=None, min_length=1, max_length=250)
    logical_date: AwareDatetime | None = None
    conf: dict[str, Any] = Field(default_factory=dict)
    note: str | None = None


class DagVersionRef(BaseModel):
    id: str
    version_number: int | None
    dag_id: str


class DagRunResponse(BaseModel):
    dag_run_id: str
    dag_id: str
    state: DagRunState
    run_type: str
    conf: dict[str, Any]
    logical_date: Timestamp | None
    queued_at: Timestamp | None
    start_date: Timestamp | None
    end_date: Timestamp | None
    run_after: Timestamp | None
    data_interval_start: Timestamp | None = None
    data_interval_end: Timestamp | None = None
    triggered_by: str | None
    note: str | None
    dag_version_id: str | None
    dag_versions: list[DagVersionRef]


class DagRunCollectionResponse(BaseModel):
    dag_runs: list[DagRunResponse]
    total_entries: int


# --------------------------------------------------------------------------- task instances
class TaskInstanceResponse(BaseModel):
    id: str
    task_id: str
    task_display_name: str
    dag_id: str
    dag_run_id: str
    map_index: int
    logical_date: Timestamp | None
    state: TaskInstanceState | None
    try_number: int
    max_tries: int | None
    start_date: Timestamp | None
    end_date: Timestamp | None
    duration: float | None
    queued_when: Timestamp | None
    scheduled_when: Timestamp | None = None
    hostname: str | None
    executor: str | None = None
    pid: int | None
    operator: str | None
    operator_name: str | None
    queue: str | None
    pool: str | None
    pool_slots: int = 1
    priority_weight: int | None
    dag_version_id: str | None
    run_after: Timestamp | None = None
    unixname: str | None = None
    executor_config: str = "{}"
    note: str | None = None
    rendered_map_index: str | None = None
    rendered_fields: dict[str, Any] = Field(default_factory=dict)


class TaskInstanceCollectionResponse(BaseModel):
    task_instances: list[TaskInstanceResponse]
    total_entries: int


class LogLineResponse(BaseModel):
    timestamp: Timestamp | None
    event: str
    stream: str | None = None


class TaskInstanceLogResponse(BaseModel):
    content: list[LogLineResponse]
    continuation_token: str | None = None


# --------------------------------------------------------------------------- XComs
class XComResponse(BaseModel):
    """An XCom entry without its value (Airflow's ``XComResponse``)."""

    key: str
    timestamp: Timestamp
    logical_date: Timestamp | None
    map_index: int
    task_id: str
    dag_id: str
    run_id: str
    dag_display_name: str
    task_display_name: str


class XComResponseNative(XComResponse):
    value: Any


class XComResponseString(XComResponse):
    value: str | None


class XComCollectionResponse(BaseModel):
    xcom_entries: list[XComResponse]
    total_entries: int


# --------------------------------------------------------------------------- tasks
class TimeDelta(BaseModel):
    """A duration as Airflow's API writes one: ``{"__type": "TimeDelta", "days",
    "seconds", "microseconds"}``."""

    model_config = ConfigDict(populate_by_name=True)

    object_type: str = Field(default="TimeDelta", alias="__type")
    days: int
    seconds: int
    microseconds: int

    @classmethod
    def of_seconds(cls, seconds: float | None) -> TimeDelta | None:
        if seconds is None:
            return None
        td = timedelta(seconds=seconds)
        return cls(days=td.days, seconds=td.seconds, microseconds=td.microseconds)


class TaskResponse(BaseModel):
    """A task of a DAG's latest version (Airflow's ``TaskResponse``)."""

    task_id: str
    task_display_name: str
    owner: str | None
    start_date: Timestamp | None
    end_date: Timestamp | None
    trigger_rule: str | None
    depends_on_past: bool
    wait_for_downstream: bool
    retries: float | None
    queue: str | None
    pool: str | None
    pool_slots: float | None
    execution_timeout: TimeDelta | None
    retry_delay: TimeDelta | None
    retry_exponential_backoff: float
    priority_weight: float | None
    weight_rule: str | None
    ui_color: str | None
    ui_fgcolor: str | None
    template_fields: list[str] | None
    downstream_task_ids: list[str] | None
    doc_md: str | None
    operator_name: str | None
    params: dict[str, Any] | None
    class_ref: dict[str, Any] | None
    is_mapped: bool | None
    has_outlets: bool = False
    extra_links: list[str] = Field(default_factory=list)


class TaskCollectionResponse(BaseModel):
    tasks: list[TaskResponse]
    total_entries: int


class DagDetailsResponse(DagResponse):
    """``GET /dags/{dag_id}/details``: the DAG with what its latest version says."""

    catchup: bool
    dag_run_timeout: timedelta | None
    asset_expression: dict[str, Any] | None = None
    doc_md: str | None
    start_date: Timestamp | None
    end_date: Timestamp | None
    is_paused_upon_creation: bool | None
    params: dict[str, Any] | None
    render_template_as_native_obj: bool = False
    template_search_path: list[str] | None
    timezone: str | None = "UTC"
    last_parsed: Timestamp | None
    default_args: dict[str, Any] | None = None
    owner_links: dict[str, str] | None = None
    is_favorite: bool = False
    concurrency: int | None


# --------------------------------------------------------------------------- health
class HealthResponse(BaseModel):
    status: Literal["healthy", "unhealthy"]
    reasons: list[str] = Field(default_factory=list)
    kafka: dict[str, Any] = Field(default_factory=dict)
    projection: dict[str, Any] = Field(default_factory=dict)
    # Instances heard from in the last few heartbeat intervals (``ServiceHeartbeat``);
    # shown by the UI's health indicator. Informational: they do not change ``status``.
    schedulers: list[dict[str, Any]] = Field(default_factory=list)
    executors: list[dict[str, Any]] = Field(default_factory=list)
    projectors: list[dict[str, Any]] = Field(default_factory=list)


class ErrorResponse(BaseModel):
    """Every error body (:mod:`ledgerflow.api.problems`): Airflow's ``detail`` plus the
    problem fields ``status``, ``title`` and ``type``."""

    detail: Any
    status: int | None = None
    title: str | None = None
    type: str | None = None
