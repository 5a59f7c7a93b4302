"""DAG versions and DAG files (``<prefix>.dags``).

Part of :mod:`ledgerflow.common.events` (import from there). Only pydantic and the
standard library.
"""

from __future__ import annotations

from typing import Literal

from ledgerflow.common.dagmodel import SerializedDag
from ledgerflow.common.events._base import _Payload
from pydantic import Field


# --------------------------------------------------------------------------- DAG versions
class DagVersionPublished(_Payload):
    """A DAG file was parsed and this DAG's structure and source are now a version.

    ``version_id`` is a hash of the file's content and the DAG id, so submitting the same
    file twice publishes the same version (and readers ignore the repeat).
    """

    type: Literal["DagVersionPublished"] = "DagVersionPublished"
    dag_id: str
    version_id: str
    version_number: int | None = None
    dag: SerializedDag
    source_code: str
    filename: str
    # Template files submitted with the DAG file (``.sql``/``.sh``/... next to it),
    # keyed by their path relative to the DAG file's directory (ADR 0006).
    extra_files: dict[str, str] = Field(default_factory=dict)
    submitted_by: str | None = None


class DagDeleted(_Payload):
    """The API deleted a DAG (Airflow's ``DELETE /dags/{dag_id}``): its versions, runs,
    task instances, logs and XComs leave the projection; the event log keeps them.

    Published on the dags topic (ordered with the DAG's versions). The API first pauses
    the DAG and fails its active runs with the usual commands, so the scheduler stops
    scheduling it; a later ``DagVersionPublished`` brings the DAG back (paused)."""

    type: Literal["DagDeleted"] = "DagDeleted"
    dag_id: str
    deleted_by: str | None = None


class DagRunDeleted(_Payload):
    """The API deleted one run (Airflow's ``DELETE .../dagRuns/{dag_run_id}``): its rows
    leave the projection; the event log keeps its history."""

    type: Literal["DagRunDeleted"] = "DagRunDeleted"
    dag_id: str
    run_id: str
    deleted_by: str | None = None


class DagFileImportFailed(_Payload):
    """A submitted DAG file did not parse (Airflow's import error). Keyed by filename."""

    type: Literal["DagFileImportFailed"] = "DagFileImportFailed"
    filename: str
    message: str
    kind: str
    lineno: int | None = None
    stack_trace: str = ""
    submitted_by: str | None = None


class DagFileImported(_Payload):
    """A submitted DAG file parsed: any import error recorded for it is resolved.
    Keyed by filename, like :class:`DagFileImportFailed`."""

    type: Literal["DagFileImported"] = "DagFileImported"
    filename: str
    dag_ids: tuple[str, ...] = ()
    submitted_by: str | None = None
