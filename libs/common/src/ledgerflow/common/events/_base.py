"""Shared pieces of every payload: the schema version, deterministic ids, base models.

Part of :mod:`ledgerflow.common.events` (import from there). Only pydantic and the
standard library.
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field

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
