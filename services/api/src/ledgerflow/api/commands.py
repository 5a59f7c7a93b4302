"""Envelopes the API publishes: DAG versions, and commands for the scheduler."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ledgerflow.common import events as ev
from ledgerflow.common.dagmodel import SerializedDag

SOURCE = "ledgerflow/api"
VERSION_ID_LENGTH = 20


def version_id_for(dag_id: str, content: str, extra_files: Mapping[str, str] | None = None) -> str:
    """A DAG version's id: a hash of the DAG id, the file's content and its template
    files, so submitting the same files twice names the same version (and changing a
    template makes a new one). Without template files the id is what it always was."""
    text = f"{dag_id}\x1f{content}"
    for path in sorted(extra_files or {}):
        text += f"\x1e{path}\x1f{(extra_files or {})[path]}"
    return hashlib.sha256(text.encode()).hexdigest()[:VERSION_ID_LENGTH]


def dag_version(
    dag: SerializedDag,
    *,
    content: str,
    filename: str,
    submitted_by: str,
    now: datetime,
    extra_files: Mapping[str, str] | None = None,
) -> ev.Envelope:
    """``DagVersionPublished``; the envelope id follows from the version id, so a
    resubmission is a duplicate every reader drops."""
    version_id = version_id_for(dag.dag_id, content, extra_files)
    return ev.make_envelope(
        ev.DagVersionPublished(
            dag_id=dag.dag_id,
            version_id=version_id,
            dag=dag,
            source_code=content,
            filename=filename,
            extra_files=dict(extra_files or {}),
            submitted_by=submitted_by,
        ),
        id=ev.deterministic_id("DagVersionPublished", version_id),
        source=SOURCE,
        time=now,
        aggregate_key=dag.dag_id,
        correlation_id=version_id,
    )


def trigger_dag_run(
    dag_id: str,
    run_id: str,
    *,
    conf: dict[str, Any],
    logical_date: datetime | None,
    note: str | None,
    triggered_by: str,
    now: datetime,
) -> ev.Envelope:
    """``TriggerDagRun``: each request is its own command (the scheduler refuses a
    duplicate run id with ``TriggerRejected``)."""
    return ev.make_envelope(
        ev.TriggerDagRun(
            dag_id=dag_id,
            run_id=run_id,
            conf=conf,
            logical_date=logical_date,
            triggered_by=triggered_by,
            note=note,
        ),
        id=str(uuid.uuid4()),
        source=SOURCE,
        time=now,
        aggregate_key=dag_id,
        correlation_id=run_id,
    )


def set_dag_paused(
    dag_id: str, is_paused: bool, *, requested_by: str, now: datetime
) -> ev.Envelope:
    return ev.make_envelope(
        ev.SetDagPaused(dag_id=dag_id, is_paused=is_paused, requested_by=requested_by),
        id=str(uuid.uuid4()),
        source=SOURCE,
        time=now,
        aggregate_key=dag_id,
    )


def manual_run_id(logical_date: datetime | None, now: datetime) -> str:
    """Airflow's manual run id: ``manual__<ISO timestamp>`` (with microseconds)."""
    return "manual__" + (logical_date or now).isoformat(timespec="microseconds")
