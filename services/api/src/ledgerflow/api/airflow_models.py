"""Airflow REST API v2 bodies for DAG versions and sources, task instance tries, the
batch run list, import errors, version and monitor (issue 5, second part).

Field names, optionality and nesting follow Airflow 3's ``core_api/datamodels``; where
ledgerflow has no such concept the field is present and null (bundles, executors).
"""

from __future__ import annotations

from ledgerflow.api.schemas import DagRunState, TaskInstanceState, Timestamp
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, NonNegativeInt


# --------------------------------------------------------------------------- DAG versions
class DagVersionResponse(BaseModel):
    """One version of a DAG (a submitted file's content for that DAG)."""

    id: str
    version_number: int
    dag_id: str
    bundle_name: str | None = None
    bundle_version: str | None = None
    created_at: Timestamp
    dag_display_name: str
    bundle_url: str | None = None


class DAGVersionCollectionResponse(BaseModel):
    dag_versions: list[DagVersionResponse]
    total_entries: int


class DAGSourceResponse(BaseModel):
    """The source of a DAG version (the Code tab)."""

    content: str | None
    dag_id: str
    version_number: int | None
    dag_display_name: str
    language: str | None = "python"


# --------------------------------------------------------------------------- tries
class TaskInstanceHistoryResponse(BaseModel):
    """One try of a task instance (Airflow's ``TaskInstanceHistoryResponse``)."""

    task_id: str
    dag_id: str
    dag_run_id: str
    map_index: int
    start_date: Timestamp | None
    end_date: Timestamp | None
    duration: float | None
    state: TaskInstanceState | None
    try_number: int
    max_tries: int
    task_display_name: str
    dag_display_name: str
    hostname: str | None
    unixname: str | None = None
    pool: str
    pool_slots: int
    queue: str | None
    priority_weight: int | None
    operator: str | None
    operator_name: str | None
    queued_when: Timestamp | None
    scheduled_when: Timestamp | None = None
    pid: int | None
    executor: str | None = None
    executor_config: str = "{}"
    dag_version: DagVersionResponse | None
    retry_reason: str | None = None


class TaskInstanceHistoryCollectionResponse(BaseModel):
    task_instances: list[TaskInstanceHistoryResponse]
    total_entries: int


# --------------------------------------------------------------------------- runs batch
class DAGRunsBatchBody(BaseModel):
    """``POST /dags/~/dagRuns/list`` (Airflow's ``DAGRunsBatchBody``)."""

    model_config = ConfigDict(extra="forbid")

    order_by: str | None = None
    page_offset: NonNegativeInt = 0
    page_limit: NonNegativeInt = Field(default=100, le=1000)
    dag_ids: list[str] | None = None
    states: list[DagRunState | None] | None = None
    run_after_gte: AwareDatetime | None = None
    run_after_lte: AwareDatetime | None = None
    logical_date_gte: AwareDatetime | None = None
    logical_date_lte: AwareDatetime | None = None
    start_date_gte: AwareDatetime | None = None
    start_date_lte: AwareDatetime | None = None
    end_date_gte: AwareDatetime | None = None
    end_date_lte: AwareDatetime | None = None


# --------------------------------------------------------------------------- import errors
class ImportErrorResponse(BaseModel):
    import_error_id: int
    timestamp: Timestamp
    filename: str
    source_reference: str | None = None
    bundle_name: str | None = None
    stack_trace: str


class ImportErrorCollectionResponse(BaseModel):
    import_errors: list[ImportErrorResponse]
    total_entries: int


# --------------------------------------------------------------------------- version, monitor
class VersionInfo(BaseModel):
    version: str
    git_version: str | None


class BaseInfoResponse(BaseModel):
    status: str | None


class SchedulerInfoResponse(BaseInfoResponse):
    latest_scheduler_heartbeat: str | None


class TriggererInfoResponse(BaseInfoResponse):
    latest_triggerer_heartbeat: str | None


class DagProcessorInfoResponse(BaseInfoResponse):
    latest_dag_processor_heartbeat: str | None


class HealthInfoResponse(BaseModel):
    """Airflow's ``/monitor/health``, mapped onto ledgerflow's parts (see the route)."""

    metadatabase: BaseInfoResponse
    scheduler: SchedulerInfoResponse
    triggerer: TriggererInfoResponse
    dag_processor: DagProcessorInfoResponse | None = None
