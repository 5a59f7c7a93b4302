"""The event schema: every fact and command ledgerflow writes to Kafka.

Each message on a ledgerflow topic is one :class:`Envelope` serialized as a CloudEvents
1.0 JSON document (structured mode): the CloudEvents attributes ``specversion``, ``id``,
``source``, ``type``, ``time`` and ``subject``, ledgerflow's extension attributes
(``schemaversion``, ``sequence``, ``aggregatekey``, ``correlationid``, ``causationid``),
and ``data``, the payload: one member of the :data:`Payload` union, discriminated by its
``type`` field. Facts are named in the past tense, commands in the imperative.

W3C trace context does not live here: it travels in Kafka headers (``traceparent``).

This module imports only pydantic and the standard library.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from ledgerflow.common.dagmodel import SerializedDag
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

SCHEMA_VERSION = 1
"""Current schema version written by this code. Older versions are upcast on read."""

CLOUDEVENTS_TYPE_PREFIX = "io.ledgerflow."
CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"

_ID_NAMESPACE = uuid.UUID("6f1c8a5e-3d0b-4c7e-9a51-1e0f5b7d2c44")


def deterministic_id(*parts: object) -> str:
    """A stable event id from its identifying parts (the idempotency key).

    Deciding the same thing twice (after a crash, a redelivery or a replay) yields the
    same id, so readers can drop the second copy.
    """
    return str(uuid.uuid5(_ID_NAMESPACE, "\x1f".join(str(p) for p in parts)))


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _TaskRef(_Payload):
    """Identifies a task instance (one task of one run, one map index)."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1


class _AttemptRef(_TaskRef):
    """Identifies one attempt of a task instance; ``try_number`` counts from 1."""

    try_number: int = Field(ge=1)


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
    submitted_by: str | None = None


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


class SetDagPaused(_Payload):
    """Command: pause or unpause a DAG."""

    type: Literal["SetDagPaused"] = "SetDagPaused"
    dag_id: str
    is_paused: bool
    requested_by: str | None = None


# --------------------------------------------------------------------------- run log: scheduler facts
class DagPauseChanged(_Payload):
    type: Literal["DagPauseChanged"] = "DagPauseChanged"
    dag_id: str
    is_paused: bool
    changed_by: str | None = None


class DagRunQueued(_Payload):
    """A run was created. It keeps ``version_id`` for its whole life."""

    type: Literal["DagRunQueued"] = "DagRunQueued"
    dag_id: str
    run_id: str
    version_id: str
    run_type: Literal["manual", "scheduled", "backfill", "asset_triggered"] = "manual"
    conf: dict[str, Any] = Field(default_factory=dict)
    logical_date: datetime | None = None
    queued_at: datetime
    triggered_by: str | None = None
    note: str | None = None


class DagRunStarted(_Payload):
    type: Literal["DagRunStarted"] = "DagRunStarted"
    dag_id: str
    run_id: str
    start_date: datetime


class DagRunSucceeded(_Payload):
    type: Literal["DagRunSucceeded"] = "DagRunSucceeded"
    dag_id: str
    run_id: str
    end_date: datetime


class DagRunFailed(_Payload):
    type: Literal["DagRunFailed"] = "DagRunFailed"
    dag_id: str
    run_id: str
    end_date: datetime
    reason: str | None = None


class TriggerRejected(_Payload):
    """A ``TriggerDagRun`` command was refused; a rejection is an output, not an error."""

    type: Literal["TriggerRejected"] = "TriggerRejected"
    dag_id: str
    run_id: str
    reason: str
    command_id: str


class TaskInstanceQueued(_AttemptRef):
    """The scheduler decided to run attempt ``try_number`` and sent a work item for it."""

    type: Literal["TaskInstanceQueued"] = "TaskInstanceQueued"
    queue: str
    pool: str = "default_pool"
    priority_weight: int = 1
    queued_when: datetime


class TaskInstanceUpForRetry(_AttemptRef):
    """Attempt ``try_number`` failed and another is due at ``retry_at``."""

    type: Literal["TaskInstanceUpForRetry"] = "TaskInstanceUpForRetry"
    retry_at: datetime


class TaskInstanceFailed(_AttemptRef):
    """Attempt ``try_number`` failed and no retries are left: the task instance failed."""

    type: Literal["TaskInstanceFailed"] = "TaskInstanceFailed"
    end_date: datetime


class TaskInstanceUpstreamFailed(_TaskRef):
    type: Literal["TaskInstanceUpstreamFailed"] = "TaskInstanceUpstreamFailed"
    at: datetime


class TaskInstanceSkipped(_TaskRef):
    type: Literal["TaskInstanceSkipped"] = "TaskInstanceSkipped"
    at: datetime
    reason: str | None = None


# --------------------------------------------------------------------------- run log: executor reports
class TaskAttemptStarted(_AttemptRef):
    """An executor started the attempt; ``start_date`` is the executor's clock."""

    type: Literal["TaskAttemptStarted"] = "TaskAttemptStarted"
    start_date: datetime
    hostname: str
    executor_id: str
    pid: int | None = None


class TaskAttemptSucceeded(_AttemptRef):
    type: Literal["TaskAttemptSucceeded"] = "TaskAttemptSucceeded"
    end_date: datetime
    return_value: Any = None
    executor_id: str


class TaskAttemptFailed(_AttemptRef):
    """The attempt failed. ``retryable=False`` means retries cannot help (e.g. the DAG
    version could not be loaded on the executor)."""

    type: Literal["TaskAttemptFailed"] = "TaskAttemptFailed"
    end_date: datetime
    error: str
    error_type: str | None = None
    retryable: bool = True
    executor_id: str


# --------------------------------------------------------------------------- work items
class RunTaskAttempt(_AttemptRef):
    """Work item: run this attempt. Sent to ``<prefix>.work.<queue>``."""

    type: Literal["RunTaskAttempt"] = "RunTaskAttempt"
    version_id: str
    queue: str
    conf: dict[str, Any] = Field(default_factory=dict)
    logical_date: datetime | None = None
    execution_timeout_seconds: float | None = None
    # XCom return values of the run's finished tasks, so the task need not ask anyone.
    upstream_xcoms: dict[str, Any] = Field(default_factory=dict)


# --------------------------------------------------------------------------- logs
class LogLine(_Payload):
    ts: datetime
    stream: Literal["stdout", "stderr", "system"]
    text: str


class TaskLogChunk(_AttemptRef):
    """An ordered chunk of an attempt's output. ``chunk`` counts from 0 per attempt."""

    type: Literal["TaskLogChunk"] = "TaskLogChunk"
    chunk: int = Field(ge=0)
    lines: tuple[LogLine, ...]


Payload = Annotated[
    DagVersionPublished
    | TriggerDagRun
    | SetDagPaused
    | DagPauseChanged
    | DagRunQueued
    | DagRunStarted
    | DagRunSucceeded
    | DagRunFailed
    | TriggerRejected
    | TaskInstanceQueued
    | TaskInstanceUpForRetry
    | TaskInstanceFailed
    | TaskInstanceUpstreamFailed
    | TaskInstanceSkipped
    | TaskAttemptStarted
    | TaskAttemptSucceeded
    | TaskAttemptFailed
    | RunTaskAttempt
    | TaskLogChunk,
    Field(discriminator="type"),
]
"""Every payload ledgerflow writes, discriminated by ``type``."""

Command = TriggerDagRun | SetDagPaused
ExecutorReport = TaskAttemptStarted | TaskAttemptSucceeded | TaskAttemptFailed
RunLogEvent = (
    DagPauseChanged
    | DagRunQueued
    | DagRunStarted
    | DagRunSucceeded
    | DagRunFailed
    | TriggerRejected
    | TaskInstanceQueued
    | TaskInstanceUpForRetry
    | TaskInstanceFailed
    | TaskInstanceUpstreamFailed
    | TaskInstanceSkipped
    | TaskAttemptStarted
    | TaskAttemptSucceeded
    | TaskAttemptFailed
)

PAYLOAD_TYPES: tuple[type[BaseModel], ...] = (
    DagVersionPublished,
    TriggerDagRun,
    SetDagPaused,
    DagPauseChanged,
    DagRunQueued,
    DagRunStarted,
    DagRunSucceeded,
    DagRunFailed,
    TriggerRejected,
    TaskInstanceQueued,
    TaskInstanceUpForRetry,
    TaskInstanceFailed,
    TaskInstanceUpstreamFailed,
    TaskInstanceSkipped,
    TaskAttemptStarted,
    TaskAttemptSucceeded,
    TaskAttemptFailed,
    RunTaskAttempt,
    TaskLogChunk,
)


class Envelope(BaseModel):
    """One message: CloudEvents attributes, ledgerflow's extensions, and the payload.

    - ``id``: the event id, which is also the idempotency key (deterministic where the
      writer can make it so, see :func:`deterministic_id`).
    - ``aggregate_key``: the Kafka key (the DAG id for DAG, command and run-log topics).
    - ``sequence``: position in the aggregate's stream as numbered by its single writer
      (the scheduler owning the DAG numbers run-log facts; other writers number their
      own messages, e.g. log chunks; 0 where a writer has no order to state).
    - ``time``: when the fact happened, given by the caller (never defaulted here).
    - ``correlation_id``: the run (or request) the message belongs to; ``causation_id``:
      the id of the message that caused this one.
    """

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    specversion: Literal["1.0"] = "1.0"
    id: str
    source: str
    type: str = ""
    time: datetime
    subject: str | None = None
    datacontenttype: Literal["application/json"] = "application/json"
    schema_version: int = Field(default=SCHEMA_VERSION, alias="schemaversion")
    aggregate_key: str = Field(alias="aggregatekey")
    sequence: int = Field(default=0, ge=0)
    correlation_id: str | None = Field(default=None, alias="correlationid")
    causation_id: str | None = Field(default=None, alias="causationid")
    data: Payload

    @field_validator("time")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("time must carry a UTC offset")
        return v

    def model_post_init(self, __context: Any) -> None:
        expected = CLOUDEVENTS_TYPE_PREFIX + self.data.type
        if not self.type:
            object.__setattr__(self, "type", expected)
        elif self.type != expected:
            raise ValueError(f"type {self.type!r} does not match data.type {self.data.type!r}")
        if self.subject is None:
            object.__setattr__(self, "subject", self.aggregate_key)


def make_envelope(
    data: BaseModel,
    *,
    id: str,
    source: str,
    time: datetime,
    aggregate_key: str,
    sequence: int = 0,
    correlation_id: str | None = None,
    causation_id: str | None = None,
) -> Envelope:
    """Wrap a payload in an envelope (keyword-only, so every field is named)."""
    return Envelope(
        id=id,
        source=source,
        time=time,
        aggregate_key=aggregate_key,
        sequence=sequence,
        correlation_id=correlation_id,
        causation_id=causation_id,
        data=data,  # type: ignore[arg-type]
    )


class MalformedMessage(ValueError):
    """A message that cannot be read as an envelope. Not retryable: dead-letter it."""

    retryable = False


_ENVELOPE_ADAPTER: TypeAdapter[Envelope] = TypeAdapter(Envelope)

# Upcasters: one function per version step, applied to the raw dict in order.
# ``UPCASTERS[n]`` turns a version-n document into a version-(n+1) document.
UPCASTERS: dict[int, Any] = {}


def upcast(doc: dict[str, Any]) -> dict[str, Any]:
    """Bring a raw envelope dict up to :data:`SCHEMA_VERSION`."""
    version = doc.get("schemaversion", 1)
    if not isinstance(version, int) or version < 1:
        raise MalformedMessage(f"schemaversion must be a positive integer, got {version!r}")
    if version > SCHEMA_VERSION:
        raise MalformedMessage(
            f"schemaversion {version} is newer than this reader ({SCHEMA_VERSION})"
        )
    while version < SCHEMA_VERSION:
        doc = UPCASTERS[version](doc)
        version += 1
        doc["schemaversion"] = version
    return doc


def encode(envelope: Envelope) -> bytes:
    """Serialize an envelope as a CloudEvents structured-mode JSON document."""
    return envelope.model_dump_json(by_alias=True, exclude_none=True).encode()


def decode(raw: bytes | None) -> Envelope:
    """Parse bytes from a topic. Raises :class:`MalformedMessage` with a readable reason."""
    if raw is None:
        raise MalformedMessage("message has no value")
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedMessage(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise MalformedMessage(f"expected a JSON object, got {type(doc).__name__}")
    doc = upcast(doc)
    try:
        return _ENVELOPE_ADAPTER.validate_python(doc)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()
        )
        raise MalformedMessage(f"invalid envelope: {problems}") from None


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the envelope (with the payload union), as published in docs/."""
    return _ENVELOPE_ADAPTER.json_schema(by_alias=True, mode="serialization")
