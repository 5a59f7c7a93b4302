"""What the API publishes to delete DAGs and runs, and to record import errors.

Deletion is a fact on the dags topic (``DagDeleted``/``DagRunDeleted``), which the
projector turns into removed rows; the event log keeps the history. The scheduler does
not know these facts, so before one the API sends it the commands it already obeys:
pause the DAG (no new scheduled runs) and fail its active runs (running attempts are
killed). A DAG submitted again after a deletion comes back paused.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from ledgerflow.api import commands, interventions
from ledgerflow.common import events as ev

SOURCE = commands.SOURCE


def _fact(data: ev.DagDeleted | ev.DagRunDeleted, *, dag_id: str, now: datetime) -> ev.Envelope:
    correlation = data.run_id if isinstance(data, ev.DagRunDeleted) else None
    return ev.make_envelope(
        data,
        id=str(uuid.uuid4()),
        source=SOURCE,
        time=now,
        aggregate_key=dag_id,
        correlation_id=correlation,
    )


def delete_dag(
    dag_id: str, *, is_paused: bool, active_runs: Sequence[str], deleted_by: str, now: datetime
) -> tuple[list[ev.Envelope], ev.Envelope]:
    """``(commands for the scheduler, the DagDeleted fact)``, in the order to send them."""
    cmds: list[ev.Envelope] = []
    if not is_paused:
        cmds.append(commands.set_dag_paused(dag_id, True, requested_by=deleted_by, now=now))
    for run_id in active_runs:
        cmds.append(_fail_run(dag_id, run_id, deleted_by, now))
    return cmds, _fact(ev.DagDeleted(dag_id=dag_id, deleted_by=deleted_by), dag_id=dag_id, now=now)


def delete_dag_run(
    dag_id: str, run_id: str, *, active: bool, deleted_by: str, now: datetime
) -> tuple[list[ev.Envelope], ev.Envelope]:
    cmds = [_fail_run(dag_id, run_id, deleted_by, now)] if active else []
    fact = _fact(
        ev.DagRunDeleted(dag_id=dag_id, run_id=run_id, deleted_by=deleted_by),
        dag_id=dag_id,
        now=now,
    )
    return cmds, fact


def _fail_run(dag_id: str, run_id: str, by: str, now: datetime) -> ev.Envelope:
    cmd = ev.SetDagRunState(dag_id=dag_id, run_id=run_id, state="failed", requested_by=by)
    return interventions.command(cmd, dag_id=dag_id, now=now, correlation_id=run_id)


def republished(envelope: ev.Envelope, deletion_id: str | None) -> ev.Envelope:
    """A ``DagVersionPublished`` submitted after the DAG's deletion ``deletion_id``: a new
    event id (the same content before the deletion was projected, and readers would drop
    a repeat); without a deletion, the envelope as it is."""
    if deletion_id is None:
        return envelope
    version_id = envelope.data.version_id
    new_id = ev.deterministic_id("DagVersionPublished", version_id, deletion_id)
    return envelope.model_copy(update={"id": new_id})


def _file_key(filename: str) -> str:
    return f"file:{filename}"


def import_failed(
    *,
    filename: str,
    message: str,
    kind: str,
    lineno: int | None,
    submitted_by: str,
    now: datetime,
) -> ev.Envelope:
    """An import error for a file that did not parse (keyed by its file name)."""
    where = f'  File "{filename}"' + (f", line {lineno}" if lineno is not None else "")
    stack = f"{where}\n{kind}: {message}\n"
    return ev.make_envelope(
        ev.DagFileImportFailed(
            filename=filename,
            message=message,
            kind=kind,
            lineno=lineno,
            stack_trace=stack,
            submitted_by=submitted_by,
        ),
        id=str(uuid.uuid4()),
        source=SOURCE,
        time=now,
        aggregate_key=_file_key(filename),
    )


def imported(
    *, filename: str, dag_ids: Sequence[str], submitted_by: str, now: datetime
) -> ev.Envelope:
    return ev.make_envelope(
        ev.DagFileImported(filename=filename, dag_ids=tuple(dag_ids), submitted_by=submitted_by),
        id=str(uuid.uuid4()),
        source=SOURCE,
        time=now,
        aggregate_key=_file_key(filename),
    )


__all__ = ["delete_dag", "delete_dag_run", "import_failed", "imported", "republished"]
