"""Backfills: commands and facts (issue 6).

Part of :mod:`ledgerflow.common.events` (import from there). Only pydantic and the
standard library.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from ledgerflow.common.events._base import _Payload
from pydantic import Field

# --------------------------------------------------------------------------- backfills
# Airflow 3's backfills (``POST /api/v2/backfills``): the API sends the commands on the
# commands topic keyed by the DAG id; the scheduler owning the DAG resolves the logical
# dates, creates the runs (``DagRunQueued`` with ``run_type="backfill"``) and writes the
# facts below to the run log (``ledgerflow.common.core.backfill``).
ReprocessBehavior = Literal["none", "failed", "completed"]


class CreateBackfill(_Payload):
    """Command: create runs for the DAG's schedule between ``from_date`` and ``to_date``
    (Airflow's ``BackfillPostBody``). ``backfill_id`` is allocated by the API.
    ``reprocess_behavior``: what to do with a logical date that already has a run
    (``none``: skip it; ``failed``: re-run it if it failed; ``completed``: re-run it if
    it finished); a run still in flight is never touched."""

    type: Literal["CreateBackfill"] = "CreateBackfill"
    dag_id: str
    backfill_id: int = Field(ge=1)
    from_date: datetime
    to_date: datetime
    run_backwards: bool = False
    dag_run_conf: dict[str, Any] = Field(default_factory=dict)
    reprocess_behavior: ReprocessBehavior = "none"
    max_active_runs: int = Field(default=10, ge=1)
    requested_by: str | None = None


class PauseBackfill(_Payload):
    """Command: create no more runs for the backfill (runs already created go on)."""

    type: Literal["PauseBackfill"] = "PauseBackfill"
    dag_id: str
    backfill_id: int = Field(ge=1)
    requested_by: str | None = None


class UnpauseBackfill(_Payload):
    type: Literal["UnpauseBackfill"] = "UnpauseBackfill"
    dag_id: str
    backfill_id: int = Field(ge=1)
    requested_by: str | None = None


class CancelBackfill(_Payload):
    """Command: stop the backfill. No more runs are created, its runs that have not
    started are marked failed (as Airflow does); running ones finish."""

    type: Literal["CancelBackfill"] = "CancelBackfill"
    dag_id: str
    backfill_id: int = Field(ge=1)
    requested_by: str | None = None


class BackfillRunPlan(_Payload):
    """One logical date of a backfill and what the backfill does with it: ``create`` a
    run (``run_id`` is ``backfill__<logical date>``), ``rerun`` the existing run
    ``run_id`` (cleared and queued again) or ``skip`` it (``exception_reason``: Airflow's
    ``already exists`` / ``in flight``). ``sort_ordinal`` counts from 1 in run order."""

    sort_ordinal: int = Field(ge=1)
    logical_date: datetime
    action: Literal["create", "rerun", "skip"]
    run_id: str | None = None
    exception_reason: str | None = None
    data_interval_start: datetime | None = None
    data_interval_end: datetime | None = None
    run_after: datetime | None = None


class BackfillCreated(_Payload):
    """The scheduler accepted a ``CreateBackfill``: ``runs`` are its logical dates in run
    order with what happens to each. Runs are created (or re-run) in that order as the
    backfill's ``max_active_runs`` allows."""

    type: Literal["BackfillCreated"] = "BackfillCreated"
    dag_id: str
    backfill_id: int = Field(ge=1)
    from_date: datetime
    to_date: datetime
    run_backwards: bool = False
    dag_run_conf: dict[str, Any] = Field(default_factory=dict)
    reprocess_behavior: ReprocessBehavior = "none"
    max_active_runs: int = Field(default=10, ge=1)
    created_by: str | None = None
    created_at: datetime
    runs: tuple[BackfillRunPlan, ...] = ()
    command_id: str | None = None


class BackfillRejected(_Payload):
    """A ``CreateBackfill`` was refused (another backfill is active, the DAG is unknown
    or not periodic, no run to create); a rejection is an output, not an error."""

    type: Literal["BackfillRejected"] = "BackfillRejected"
    dag_id: str
    backfill_id: int
    reason: str
    command_id: str


class BackfillRunReprocessed(_Payload):
    """The backfill re-runs the existing run ``run_id`` (it is cleared next); from now
    on the run is a backfill run of ``backfill_id``."""

    type: Literal["BackfillRunReprocessed"] = "BackfillRunReprocessed"
    dag_id: str
    backfill_id: int
    run_id: str
    logical_date: datetime | None = None
    at: datetime


class BackfillPaused(_Payload):
    type: Literal["BackfillPaused"] = "BackfillPaused"
    dag_id: str
    backfill_id: int
    at: datetime
    by: str | None = None


class BackfillUnpaused(_Payload):
    type: Literal["BackfillUnpaused"] = "BackfillUnpaused"
    dag_id: str
    backfill_id: int
    at: datetime
    by: str | None = None


class BackfillCancelled(_Payload):
    """The backfill was cancelled: it creates no more runs and is completed at once."""

    type: Literal["BackfillCancelled"] = "BackfillCancelled"
    dag_id: str
    backfill_id: int
    at: datetime
    by: str | None = None


class BackfillCompleted(_Payload):
    """Every run of the backfill finished (or it was cancelled): it is no longer active,
    so the DAG may have another backfill."""

    type: Literal["BackfillCompleted"] = "BackfillCompleted"
    dag_id: str
    backfill_id: int
    at: datetime
    cancelled: bool = False
