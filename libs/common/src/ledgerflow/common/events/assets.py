"""Asset events (``<prefix>.assets``, ADR 0013) and messages from external Kafka topics (ADR 0014).

Part of :mod:`ledgerflow.common.events` (import from there). Only pydantic and the
standard library.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from ledgerflow.common.events._base import _Payload
from pydantic import Field


# --------------------------------------------------------------------------- assets
class AssetEventReport(_Payload):
    """One asset event a successful attempt reports (an outlet, or an asset added
    through an outlet ``AssetAlias``; ``source_aliases`` names those aliases)."""

    name: str = Field(min_length=1)
    uri: str = ""
    group: str = "asset"
    extra: dict[str, Any] = Field(default_factory=dict)
    source_aliases: tuple[str, ...] = ()


class AssetEventEmitted(_Payload):
    """An asset was updated (Airflow's ``AssetEvent``), on ``<prefix>.assets`` keyed by
    the asset's name (ADR 0013). Written by the scheduler owning the producing DAG when
    it folds the task's success (id from the attempt and the asset, so deciding it again
    is a duplicate), or by the API (``POST /api/v2/assets/events``, ``source_dag_id``
    None, ``created_by`` the user). Every scheduler reads the whole topic to trigger the
    DAGs it owns that are scheduled on the asset."""

    type: Literal["AssetEventEmitted"] = "AssetEventEmitted"
    name: str = Field(min_length=1)
    uri: str = ""
    group: str = "asset"
    extra: dict[str, Any] = Field(default_factory=dict)
    source_aliases: tuple[str, ...] = ()
    source_dag_id: str | None = None
    source_run_id: str | None = None
    source_task_id: str | None = None
    source_map_index: int = -1
    source_try_number: int | None = None
    created_by: str | None = None
    timestamp: datetime


# --------------------------------------------------------------------------- external messages
class ExternalMessageReceived(_Payload):
    """A message on an external Kafka topic matched an asset watcher of the DAG
    (ADR 0014). Written to the run log (keyed by ``dag_id``) by the scheduler instance
    owning the DAG, with an id from (dag, asset, watcher, topic, partition, offset), so
    reading the same message again yields a copy readers drop. The core turns it into
    exactly one asset-triggered run (``run_id`` from the message's position), and the
    fold keeps, per (asset, watcher, topic, partition), the next offset to read.
    ``value`` is the parsed JSON, the text, or the bytes in base64 (``value_format``);
    None with ``value_omitted`` when the message was too large to copy into the log.
    ``timestamp_ms`` is the Kafka record timestamp."""

    type: Literal["ExternalMessageReceived"] = "ExternalMessageReceived"
    dag_id: str
    asset: str
    watcher: str
    topic: str
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)
    key: str | None = None
    value: Any = None
    value_format: Literal["json", "text", "bytes"] = "json"
    value_omitted: bool = False
    headers: dict[str, str] = Field(default_factory=dict)
    timestamp_ms: int | None = None
