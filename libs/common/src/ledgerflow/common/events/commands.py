"""Commands from the API (``<prefix>.commands``), imperative names.

Part of :mod:`ledgerflow.common.events` (import from there). Only pydantic and the
standard library.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from ledgerflow.common.events._base import _Payload
from pydantic import Field


# --------------------------------------------------------------------------- commands
class TriggerDagRun(_Payload):
    """Command: create a run of a DAG (manual trigger)."""

    type: Literal["TriggerDagRun"] = "TriggerDagRun"
    dag_id: str
    run_id: str
    conf: dict[str, Any] = Field(default_factory=dict)
    logical_date: datetime | None = None
    run_type: Literal["manual", "scheduled", "backfill", "asset_triggered"] = "manual"
    triggered_by: str | None = None
    note: str | None = None
    # Issue 6: set by the scheduler's asset trigger (ADR 0013), copied to DagRunQueued.
    triggering_asset_events: tuple[dict[str, Any], ...] = ()


class SetDagPaused(_Payload):
    """Command: pause or unpause a DAG."""

    type: Literal["SetDagPaused"] = "SetDagPaused"
    dag_id: str
    is_paused: bool
    requested_by: str | None = None


ClearableState = Literal["success", "failed", "skipped"]


class ClearTaskInstances(_Payload):
    """Command: run task instances again (Airflow's ``clearTaskInstances``).

    The API resolves which runs are meant (``run_ids``); the scheduler selects the
    instances in each with the same rules the API's dry run used
    (``ledgerflow.common.core.selection``). ``task_ids`` entries are task ids (every
    map index) or ``[task_id, map_index]`` pairs, as in Airflow; None means every task. A cleared instance runs again with
    the next ``try_number`` and a fresh set of retries; a finished run is re-opened
    (queued) as Airflow does; a running attempt is killed.
    """

    type: Literal["ClearTaskInstances"] = "ClearTaskInstances"
    dag_id: str
    run_ids: tuple[str, ...]
    task_ids: tuple[str | tuple[str, int], ...] | None = None
    only_failed: bool = False
    only_running: bool = False
    include_upstream: bool = False
    include_downstream: bool = False
    reset_dag_runs: bool = True
    requested_by: str | None = None


class SetTaskInstanceState(_Payload):
    """Command: mark task instances (Airflow's PATCH task instance ``new_state``).

    ``map_indexes`` None: every map index of the task. ``include_future``/``include_past``
    extend to the same task in later/earlier runs (by logical date). A running attempt
    of a marked instance is killed; its late report does not override the mark."""

    type: Literal["SetTaskInstanceState"] = "SetTaskInstanceState"
    dag_id: str
    run_id: str
    task_id: str
    map_indexes: tuple[int, ...] | None = None
    new_state: ClearableState
    include_upstream: bool = False
    include_downstream: bool = False
    include_future: bool = False
    include_past: bool = False
    requested_by: str | None = None


class SetDagRunState(_Payload):
    """Command: mark a run success, failed or queued (Airflow's PATCH dag run)."""

    type: Literal["SetDagRunState"] = "SetDagRunState"
    dag_id: str
    run_id: str
    state: Literal["success", "failed", "queued"]
    requested_by: str | None = None
