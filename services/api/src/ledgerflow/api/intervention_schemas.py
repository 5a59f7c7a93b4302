"""Request bodies of the clear and mark endpoints (Airflow REST API v2 shapes)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

MarkState = Literal["success", "failed", "skipped"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClearTaskInstancesBody(_Body):
    """Airflow's ``ClearTaskInstancesBody``. ``dry_run`` defaults to true, as in
    Airflow: nothing changes unless it is false. ``run_on_latest_version`` is accepted
    and ignored (a run keeps its DAG version in ledgerflow)."""

    dry_run: bool = True
    start_date: datetime | None = None
    end_date: datetime | None = None
    only_failed: bool = True
    only_running: bool = False
    reset_dag_runs: bool = True
    task_ids: list[str | tuple[str, int]] | None = None
    dag_run_id: str | None = None
    include_upstream: bool = False
    include_downstream: bool = False
    include_future: bool = False
    include_past: bool = False
    run_on_latest_version: bool = False


class PatchTaskInstanceBody(_Body):
    """Airflow's ``PatchTaskInstanceBody``; ``dry_run`` is ledgerflow's shortcut for the
    ``.../dry_run`` endpoint."""

    new_state: MarkState | None = None
    note: str | None = None
    include_upstream: bool = False
    include_downstream: bool = False
    include_future: bool = False
    include_past: bool = False
    dry_run: bool = False


class DagRunClearBody(_Body):
    """Airflow's ``DAGRunClearBody``."""

    dry_run: bool = True
    only_failed: bool = False
    run_on_latest_version: bool = False


class DagRunPatchBody(_Body):
    """Airflow's ``DAGRunPatchBody``."""

    state: Literal["queued", "success", "failed"] | None = None
    note: str | None = None
