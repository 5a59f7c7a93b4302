"""The event schema: every fact and command ledgerflow writes to Kafka.

Each message on a ledgerflow topic is one :class:`Envelope` serialized as a CloudEvents
1.0 JSON document (structured mode): the CloudEvents attributes ``specversion``, ``id``,
``source``, ``type``, ``time`` and ``subject``, ledgerflow's extension attributes
(``schemaversion``, ``sequence``, ``aggregatekey``, ``correlationid``, ``causationid``),
and ``data``, the payload: one member of the :data:`Payload` union, discriminated by its
``type`` field. Facts are named in the past tense, commands in the imperative.

W3C trace context does not live here: it travels in Kafka headers (``traceparent``).

The payload models live in submodules by topic (``catalog``, ``commands``,
``run_facts``, ``attempts``, ``assets``, ``backfills``, ``config``); import them from
here. This package imports only pydantic and the standard library.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from ledgerflow.common.dagmodel import SerializedDag  # noqa: F401 (re-exported)
from ledgerflow.common.events._base import (  # noqa: F401
    _ID_NAMESPACE,
    CLOUDEVENTS_TYPE_PREFIX,
    CONTENT_TYPE,
    SCHEMA_VERSION,
    _AttemptRef,
    _Payload,
    _TaskRef,
    deterministic_id,
)
from ledgerflow.common.events.assets import (  # noqa: F401
    AssetEventEmitted,
    AssetEventReport,
    ExternalMessageReceived,
)
from ledgerflow.common.events.attempts import (  # noqa: F401
    CancelTaskAttempt,
    LogLine,
    RunTaskAttempt,
    TaskAttemptFailed,
    TaskAttemptHeartbeat,
    TaskAttemptRescheduled,
    TaskAttemptSkipped,
    TaskAttemptStarted,
    TaskAttemptSucceeded,
    TaskLogChunk,
    XComEntry,
)
from ledgerflow.common.events.backfills import (  # noqa: F401
    BackfillCancelled,
    BackfillCompleted,
    BackfillCreated,
    BackfillPaused,
    BackfillRejected,
    BackfillRunPlan,
    BackfillRunReprocessed,
    BackfillUnpaused,
    CancelBackfill,
    CreateBackfill,
    PauseBackfill,
    ReprocessBehavior,
    UnpauseBackfill,
)
from ledgerflow.common.events.catalog import (  # noqa: F401
    DagDeleted,
    DagFileImported,
    DagFileImportFailed,
    DagRunDeleted,
    DagVersionPublished,
)
from ledgerflow.common.events.commands import (  # noqa: F401
    ClearableState,
    ClearTaskInstances,
    SetDagPaused,
    SetDagRunState,
    SetTaskInstanceState,
    TriggerDagRun,
)
from ledgerflow.common.events.config import (  # noqa: F401
    ROLES,
    ApiKeyCreated,
    ApiKeyRevoked,
    ConnectionDeleted,
    ConnectionSet,
    PoolDeleted,
    PoolSet,
    Role,
    ServiceHeartbeat,
    UserCreated,
    UserDeleted,
    UserUpdated,
    VariableDeleted,
    VariableSet,
)
from ledgerflow.common.events.run_facts import (  # noqa: F401
    DagPauseChanged,
    DagRunFailed,
    DagRunQueued,
    DagRunStarted,
    DagRunStateSet,
    DagRunSucceeded,
    PoolSlotsGranted,
    TaskAttemptZombie,
    TaskInstanceCleared,
    TaskInstanceFailed,
    TaskInstanceFailedByScheduler,
    TaskInstanceMapExpanded,
    TaskInstanceQueued,
    TaskInstanceScheduled,
    TaskInstanceSkipped,
    TaskInstanceStateSet,
    TaskInstanceUpForRetry,
    TaskInstanceUpstreamFailed,
    TriggerRejected,
)
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

Payload = Annotated[
    DagVersionPublished
    | DagDeleted
    | DagRunDeleted
    | DagFileImportFailed
    | DagFileImported
    | TriggerDagRun
    | SetDagPaused
    | ClearTaskInstances
    | SetTaskInstanceState
    | SetDagRunState
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
    | TaskInstanceMapExpanded
    | TaskInstanceFailedByScheduler
    | TaskAttemptZombie
    | TaskInstanceCleared
    | TaskInstanceStateSet
    | DagRunStateSet
    | TaskInstanceScheduled
    | PoolSlotsGranted
    | CreateBackfill
    | PauseBackfill
    | UnpauseBackfill
    | CancelBackfill
    | BackfillCreated
    | BackfillRejected
    | BackfillRunReprocessed
    | BackfillPaused
    | BackfillUnpaused
    | BackfillCancelled
    | BackfillCompleted
    | TaskAttemptStarted
    | TaskAttemptSucceeded
    | TaskAttemptFailed
    | TaskAttemptSkipped
    | TaskAttemptRescheduled
    | TaskAttemptHeartbeat
    | AssetEventEmitted
    | ExternalMessageReceived
    | CancelTaskAttempt
    | RunTaskAttempt
    | TaskLogChunk
    | VariableSet
    | VariableDeleted
    | ConnectionSet
    | ConnectionDeleted
    | PoolSet
    | PoolDeleted
    | UserCreated
    | UserUpdated
    | UserDeleted
    | ApiKeyCreated
    | ApiKeyRevoked
    | ServiceHeartbeat,
    Field(discriminator="type"),
]
"""Every payload ledgerflow writes, discriminated by ``type``."""

Command = (
    TriggerDagRun
    | SetDagPaused
    | ClearTaskInstances
    | SetTaskInstanceState
    | SetDagRunState
    | CreateBackfill
    | PauseBackfill
    | UnpauseBackfill
    | CancelBackfill
)
PoolEvent = PoolSet | PoolDeleted
UserEvent = UserCreated | UserUpdated | UserDeleted | ApiKeyCreated | ApiKeyRevoked
ConfigEvent = (
    VariableSet | VariableDeleted | ConnectionSet | ConnectionDeleted | PoolEvent | UserEvent
)
ExecutorReport = (
    TaskAttemptStarted
    | TaskAttemptSucceeded
    | TaskAttemptFailed
    | TaskAttemptSkipped
    | TaskAttemptRescheduled
    | TaskAttemptHeartbeat
)
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
    | TaskInstanceMapExpanded
    | TaskInstanceFailedByScheduler
    | TaskAttemptZombie
    | TaskInstanceCleared
    | TaskInstanceStateSet
    | DagRunStateSet
    | TaskInstanceScheduled
    | PoolSlotsGranted
    | BackfillCreated
    | BackfillRejected
    | BackfillRunReprocessed
    | BackfillPaused
    | BackfillUnpaused
    | BackfillCancelled
    | BackfillCompleted
    | TaskAttemptStarted
    | TaskAttemptSucceeded
    | TaskAttemptFailed
    | TaskAttemptSkipped
    | TaskAttemptRescheduled
    | TaskAttemptHeartbeat
)

PAYLOAD_TYPES: tuple[type[BaseModel], ...] = get_args(get_args(Payload)[0])
"""Every payload model, from the :data:`Payload` union (so a new one cannot be missed)."""


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
