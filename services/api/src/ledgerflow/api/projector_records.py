"""What the projector makes of fetched records before their transaction: decoded
envelopes, each prepared for projection (:func:`ledgerflow.api.projection_batch.prepare`).

None of this touches the database, so the projector does it for the next batch while
the current one is in Postgres (``Projector.run``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition
from ledgerflow.api.projection_batch import Delivered, Prepared, prepare
from ledgerflow.common.events import SCHEMA_VERSION, Envelope, MalformedMessage
from ledgerflow.common.kafka_io import decode_record, traceparent_of
from pydantic import TypeAdapter, ValidationError


@dataclass
class Fetched:
    """One ``getmany``: per partition, each record with its prepared event, or the
    reason it cannot be read (it goes to the dead-letter topic)."""

    records: dict[TopicPartition, list[tuple[Any, Prepared | MalformedMessage]]] = field(
        default_factory=dict
    )

    @property
    def size(self) -> int:
        return sum(len(r) for r in self.records.values())

    def extend(self, more: Fetched) -> None:
        """Add a later fetch's records (after these, partition by partition)."""
        for tp, records in more.records.items():
            self.records.setdefault(tp, []).extend(records)

    def without(self, partitions: list[TopicPartition]) -> Fetched:
        return Fetched({tp: r for tp, r in self.records.items() if tp not in partitions})


YIELD_EVERY = 64
"""Records prepared between two yields to the event loop, so that the batch in
Postgres gets its answers handled while the next one is being prepared."""


async def prepare_fetched(batch: dict[TopicPartition, list[Any]]) -> Fetched:
    fetched = Fetched()
    done = 0
    for tp, records in batch.items():
        if not records:
            continue
        out: list[tuple[Any, Prepared | MalformedMessage]] = []
        for record in records:
            done += 1
            if done % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            try:
                envelope = decode(record)
            except MalformedMessage as exc:
                out.append((record, exc))
                continue
            delivered = Delivered(
                envelope, record.topic, record.partition, record.offset, traceparent_of(record)
            )
            out.append((record, prepare(delivered)))
        fetched.records[tp] = out
    return fetched


_ENVELOPE_JSON = TypeAdapter(Envelope)


# A JSON ``\u0000`` escape (preceded by an even number of backslashes, so not an escaped
# backslash followed by "u0000").
_NUL_ESCAPE = re.compile(rb"(?<!\\)((?:\\\\)*)\\u0000")


def without_nul(value: bytes) -> bytes:
    """``value`` (JSON) with every NUL character in its strings replaced by U+FFFD.

    Postgres ``text`` and ``jsonb`` cannot hold NUL, so an event carrying one (a task's
    output line, an XCom string, an error message) would be refused, and with it the
    batch. The run log keeps the event as it was; the projection shows U+FFFD."""
    if b"\\u0000" not in value:
        return value
    return _NUL_ESCAPE.sub(rb"\1\\ufffd", value)


def decode(record: Any) -> Envelope:
    """``decode_record``, faster: pydantic parses the JSON itself (half the time of
    ``json.loads`` plus validation). Anything that is not a valid envelope of the current
    schema version goes through ``decode_record``, which upcasts or says what is wrong.
    NUL characters become U+FFFD here, at the projection's boundary (:func:`without_nul`)."""
    if record.value is not None and b"\\u0000" in record.value:
        record = dataclasses.replace(record, value=without_nul(record.value))
    if record.value is not None:
        try:
            envelope = _ENVELOPE_JSON.validate_json(record.value)
        except ValidationError:
            pass
        else:
            if envelope.schema_version == SCHEMA_VERSION:
                return envelope
    return decode_record(record)
