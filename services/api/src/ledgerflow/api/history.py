"""A run's history from the raw event store, and the run as it was at any point.

``GET .../dagRuns/{run_id}/events`` lists the run's events: the commands addressed to
it and its run-log facts (scheduler decisions, executor reports), ordered by event time
and then by place in the log. ``sequence`` numbers them from 1 in that order.

``?as_of=<sequence>`` or ``?as_of=<ISO time>`` on the run and on its task instances
answers with the state after the events up to that sequence number (or that time). It
is computed by folding those run-log events, in log order, with the scheduler's own
pure fold (:func:`ledgerflow.common.core.evolve`) and mapping the folded
:class:`~ledgerflow.common.core.Run` to the API's shapes, so history cannot drift from
what the scheduler decided. What the fold does not track (the executor's pid, the queue
a try was sent to, rendered fields) is read from the same events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from ledgerflow.api import queries, schemas
from ledgerflow.common import events as ev
from ledgerflow.common.core import DagState, Run, TaskInstance, empty, evolve
from ledgerflow.common.dagmodel import SerializedDag
from ledgerflow.common.topics import Topics
from pydantic import BaseModel

# Payload fields that name who caused an event, first match wins (as the event log view).
_WHO_FIELDS = (
    "by",
    "triggered_by",
    "requested_by",
    "changed_by",
    "submitted_by",
    "set_by",
    "deleted_by",
    "cleared_by",
    "marked_by",
)


class RunEventResponse(BaseModel):
    """One event of a run's history."""

    sequence: int  # 1-based place in the run's history (what ``as_of`` takes)
    event_id: str
    type: str  # the payload type, e.g. "TaskAttemptStarted"
    time: datetime
    source: str
    position: str  # topic:partition:offset
    event_sequence: int  # the envelope's own sequence (its writer's numbering)
    correlation_id: str | None
    caused_by: str | None  # the id of the event that caused this one
    user: str | None  # who asked for it, when a person did
    data: dict[str, Any]


class RunEventCollectionResponse(BaseModel):
    events: list[RunEventResponse]
    total_entries: int


AsOf = int | datetime


def parse_as_of(text: str) -> AsOf:
    """A sequence number (``12``) or an ISO 8601 time with offset; ValueError otherwise."""
    if text.strip().isdigit():
        return int(text)
    at = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if at.tzinfo is None:
        raise ValueError("as_of needs a UTC offset")
    return at


@dataclass(frozen=True)
class _Event:
    sequence: int
    row: asyncpg.Record

    @property
    def envelope(self) -> ev.Envelope:
        r = self.row
        return ev.Envelope.model_validate(
            {
                "id": r["event_id"],
                "source": r["source"],
                "time": r["event_time"],
                "schemaversion": r["schema_version"],
                "aggregatekey": r["aggregate_key"],
                "sequence": r["sequence"],
                "correlationid": r["correlation_id"],
                "causationid": r["causation_id"],
                "data": r["data"],
            }
        )


def _history_topics(topics: Topics) -> tuple[str, str]:
    return (topics.commands, topics.runs)


async def _history(
    conn: asyncpg.Connection, topics: Topics, dag_id: str, run_id: str
) -> list[_Event]:
    rows = await queries.run_events(conn, dag_id, run_id, topics=_history_topics(topics))
    return [_Event(i, row) for i, row in enumerate(rows, start=1)]


def _response(e: _Event) -> RunEventResponse:
    r = e.row
    data = r["data"]
    return RunEventResponse(
        sequence=e.sequence,
        event_id=r["event_id"],
        type=r["event_type"],
        time=r["event_time"],
        source=r["source"],
        position=f"{r['topic']}:{r['kafka_partition']}:{r['kafka_offset']}",
        event_sequence=r["sequence"],
        correlation_id=r["correlation_id"],
        caused_by=r["causation_id"],
        user=next((data[f] for f in _WHO_FIELDS if data.get(f)), None),
        data=data,
    )


async def list_run_events(
    conn: asyncpg.Connection, topics: Topics, dag_id: str, run_id: str, *, limit: int, offset: int
) -> RunEventCollectionResponse | None:
    """The run's history page, or None when the run has no events at all."""
    history = await _history(conn, topics, dag_id, run_id)
    if not history:
        return None
    return RunEventCollectionResponse(
        events=[_response(e) for e in history[offset : offset + limit]],
        total_entries=len(history),
    )


# --------------------------------------------------------------------------- as of


@dataclass(frozen=True)
class RunAsOf:
    run: schemas.DagRunResponse
    task_instances: list[schemas.TaskInstanceResponse]


def _up_to(history: Sequence[_Event], as_of: AsOf) -> list[_Event]:
    if isinstance(as_of, int):
        return [e for e in history if e.sequence <= as_of]
    return [e for e in history if e.row["event_time"] <= as_of]


def fold(run_id: str, dag_id: str, events: Sequence[ev.Envelope]) -> Run | None:
    """The scheduler's fold over one run's run-log events (in log order)."""
    state: DagState = empty(dag_id)
    for envelope in events:
        state = evolve(state, envelope)
    return state.runs.get(run_id)


async def run_as_of(
    conn: asyncpg.Connection, topics: Topics, dag_id: str, run_id: str, as_of: AsOf
) -> RunAsOf | None:
    """The run and its task instances after the history up to ``as_of`` (None: the run
    did not exist yet, or does not exist)."""
    chosen = _up_to(await _history(conn, topics, dag_id, run_id), as_of)
    log = sorted(
        (e for e in chosen if e.row["topic"] == topics.runs),
        key=lambda e: (e.row["kafka_partition"], e.row["kafka_offset"]),
    )
    envelopes = [e.envelope for e in log]
    run = fold(run_id, dag_id, envelopes)
    if run is None:
        return None
    version = await queries.dag_version(conn, run.version_id)
    queued = next(e.data for e in envelopes if isinstance(e.data, ev.DagRunQueued))
    number, dag = version if version is not None else (None, None)
    response = schemas.DagRunResponse(
        dag_run_id=run.run_id,
        dag_id=run.dag_id,
        state=run.state,
        run_type=run.run_type,
        conf=dict(run.conf),
        logical_date=run.logical_date,
        queued_at=run.queued_at,
        start_date=run.start_date,
        end_date=run.end_date,
        run_after=queued.run_after or run.logical_date or run.queued_at,
        data_interval_start=queued.data_interval_start,
        data_interval_end=queued.data_interval_end,
        triggered_by=queued.triggered_by,
        note=queued.note,
        dag_version_id=run.version_id,
        dag_versions=[
            schemas.DagVersionRef(id=run.version_id, version_number=number, dag_id=dag_id)
        ]
        if version is not None
        else [],
    )
    return RunAsOf(response, _task_instances(run, dag, envelopes))


@dataclass
class _Extras:
    """What the API shows of a try that the fold does not keep."""

    pid: int | None = None
    queue: str | None = None
    pool: str | None = None
    priority_weight: int | None = None
    rendered_fields: dict[str, Any] | None = None


def _extras(envelopes: Sequence[ev.Envelope]) -> dict[tuple[str, int, int], _Extras]:
    out: dict[tuple[str, int, int], _Extras] = {}
    for envelope in envelopes:
        p = envelope.data
        try_number = getattr(p, "try_number", None)
        if try_number is None or not hasattr(p, "task_id"):
            continue
        x = out.setdefault((p.task_id, p.map_index, try_number), _Extras())
        if isinstance(p, ev.TaskInstanceQueued):
            x.queue, x.pool, x.priority_weight = p.queue, p.pool, p.priority_weight
        elif isinstance(p, ev.TaskAttemptStarted):
            x.pid = p.pid
        elif isinstance(p, ev.TaskAttemptSucceeded | ev.TaskAttemptFailed | ev.TaskAttemptSkipped):
            if p.rendered_fields:
                x.rendered_fields = dict(p.rendered_fields)
    return out


def _shown_state(ti: TaskInstance) -> Any:
    # "attempt_failed" is the fold's own: the scheduler has not yet said retry or fail,
    # and the projection keeps showing the try as it was (running, or queued).
    if ti.state == "attempt_failed":
        return "running" if ti.start_date is not None else "queued"
    return ti.state


def _task_instances(
    run: Run, dag: SerializedDag | None, envelopes: Sequence[ev.Envelope]
) -> list[schemas.TaskInstanceResponse]:
    extras = _extras(envelopes)
    tasks = {t.task_id: t for t in dag.tasks} if dag is not None else {}
    keys = [(task_id, i) for task_id in tasks for i in run.map_indexes(task_id)]
    keys += sorted(k for k in run.tasks if k[0] not in tasks)  # tasks gone from the DAG
    out = []
    for task_id, map_index in sorted(keys):
        ti = run.ti(task_id, map_index)
        task = tasks.get(task_id)
        x = extras.get((task_id, map_index, ti.try_number), _Extras())
        start, end = ti.start_date, ti.end_date
        not_run = ti.state in ("skipped", "upstream_failed") and ti.try_number == 0
        if not_run and start is None:
            start = end  # decided without running: Airflow sets start = end
        duration = (end - start).total_seconds() if start and end else None
        if not_run and duration is None:
            duration = 0.0
        out.append(
            schemas.TaskInstanceResponse(
                id=queries.task_instance_id(run.dag_id, run.run_id, task_id, map_index),
                task_id=task_id,
                task_display_name=task_id,
                dag_id=run.dag_id,
                dag_run_id=run.run_id,
                map_index=map_index,
                logical_date=run.logical_date,
                state=_shown_state(ti),
                try_number=ti.try_number,
                max_tries=task.retries if task is not None else None,
                start_date=start,
                end_date=end,
                duration=duration,
                queued_when=ti.queued_when,
                hostname=ti.hostname,
                pid=x.pid,
                operator=task.operator if task is not None else None,
                operator_name=task.operator if task is not None else None,
                queue=x.queue or (task.queue if task is not None else None),
                pool=x.pool or (task.pool if task is not None else None),
                priority_weight=x.priority_weight
                if x.priority_weight is not None
                else (task.priority_weight if task is not None else None),
                dag_version_id=run.version_id,
                run_after=run.logical_date or run.queued_at,
                rendered_fields=x.rendered_fields or {},
            )
        )
    return out
