"""Request and response bodies of ``/api/v2/backfills`` (Airflow 3's
``core_api/datamodels/backfills.py`` fields; ledgerflow adds a few, named below)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from ledgerflow.api.schemas import Timestamp
from pydantic import BaseModel, ConfigDict, Field

ReprocessBehavior = Literal["none", "failed", "completed"]


class BackfillPostBody(BaseModel):
    """Airflow's ``BackfillPostBody``. A date without an offset is UTC.
    ``run_on_latest_version`` is accepted for Airflow parity: backfill runs always use
    the DAG's latest version here."""

    model_config = ConfigDict(extra="forbid")

    dag_id: str = Field(min_length=1, max_length=250)
    from_date: datetime
    to_date: datetime
    run_backwards: bool = False
    dag_run_conf: dict[str, Any] = Field(default_factory=dict)
    reprocess_behavior: ReprocessBehavior = "none"
    max_active_runs: int = Field(default=10, ge=1, le=10_000)
    run_on_latest_version: bool = True


class BackfillDagRunResponse(BaseModel):
    """One logical date of a backfill (Airflow's ``backfill_dag_run`` row; ledgerflow's
    addition to the response): the run it made or re-runs, or why it was skipped."""

    sort_ordinal: int
    logical_date: Timestamp
    action: Literal["create", "rerun", "skip"]
    dag_run_id: str | None
    exception_reason: str | None
    state: str | None = None


class BackfillResponse(BaseModel):
    """Airflow's ``BackfillResponse`` plus ``run_backwards``, ``cancelled``,
    ``triggering_user_name`` and, for a single backfill, ``dag_runs``."""

    id: int
    dag_id: str
    from_date: Timestamp
    to_date: Timestamp
    dag_run_conf: dict[str, Any]
    is_paused: bool
    reprocess_behavior: ReprocessBehavior
    max_active_runs: int
    created_at: Timestamp
    completed_at: Timestamp | None
    updated_at: Timestamp
    dag_display_name: str
    run_backwards: bool = False
    cancelled: bool = False
    triggering_user_name: str | None = None
    dag_runs: list[BackfillDagRunResponse] | None = None


class BackfillCollectionResponse(BaseModel):
    backfills: list[BackfillResponse]
    total_entries: int


class DryRunBackfillResponse(BaseModel):
    logical_date: Timestamp


class DryRunBackfillCollectionResponse(BaseModel):
    backfills: list[DryRunBackfillResponse]
    total_entries: int
