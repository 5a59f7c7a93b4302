"""Projecting a fetched batch of events with few round trips, same rows as one by one.

:func:`apply_events` is the projector's fast path. It does in one transaction (the
caller's) what :func:`ledgerflow.api.projection.apply_event` does for each event in
turn, in the same order, and gives the same rows:

1. the raw envelopes go into ``events`` with one ``INSERT ... SELECT FROM unnest(...)
   ON CONFLICT DO NOTHING RETURNING event_id``: the ids it returns are the new events
   (a repeated id, in the batch or from before, is a duplicate and is not handled again);
2. the new events are handled in delivery order. The statements of consecutive planned
   events (:class:`~ledgerflow.api.projection.PlannedHandler`) go to Postgres together,
   as the rows of one ``executemany`` of the dispatch function
   (:mod:`ledgerflow.api.projection_dispatch`), which runs them in that order; any other
   handler (the registry's plain ``async handler(conn, env)``) runs alone, in order,
   after the rows before it have been sent.

Items come prepared (:func:`prepare`): their ``events`` row and plan are built beforehand, with
no database, so the projector can do it while the previous batch is in Postgres. No
handler reads ``events``, so storing every raw envelope first changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from ledgerflow.api.projection import UNSTORED, PlannedHandler, handler_for
from ledgerflow.api.projection_base import Statement, note_unregistered
from ledgerflow.api.projection_dispatch import Dispatcher
from ledgerflow.common import events as ev


@dataclass(frozen=True, slots=True)
class Delivered:
    """An envelope as the projector read it: where it sits in the log."""

    envelope: ev.Envelope
    topic: str
    partition: int
    offset: int
    traceparent: str | None


_INSERT_EVENTS = """
INSERT INTO events (event_id, topic, kafka_partition, kafka_offset, aggregate_key, event_type,
                    event_time, sequence, source, schema_version, correlation_id, causation_id,
                    traceparent, data)
SELECT e.id, e.topic, e.part, e.off, e.agg, e.typ, e.at, e.seq, e.src, e.ver, e.corr, e.caus,
       e.tp, e.data::jsonb
FROM unnest($1::text[], $2::text[], $3::integer[], $4::bigint[], $5::text[], $6::text[],
            $7::timestamptz[], $8::bigint[], $9::text[], $10::integer[], $11::text[],
            $12::text[], $13::text[], $14::text[])
     WITH ORDINALITY AS e(id, topic, part, off, agg, typ, at, seq, src, ver, corr, caus, tp,
                          data, n)
ORDER BY e.n
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id
"""


_EVENT_COLUMNS = 14


def _data_json(envelope: ev.Envelope) -> str:
    # The same document as ``envelope.model_dump(mode="json", by_alias=True)["data"]``
    # (what apply_event stores), serialized by pydantic's core instead of json.dumps.
    data: str = envelope.data.model_dump_json(by_alias=True)
    return data


@dataclass(frozen=True, slots=True)
class Prepared:
    """A delivered event with what projecting it takes that needs no database: its
    ``events`` row and, for a planned handler, its statements. The projector prepares
    the next batch while the current one is in Postgres."""

    delivered: Delivered
    row: tuple[Any, ...] | None
    """Its ``events`` row; None for the :data:`~ledgerflow.api.projection.UNSTORED`
    kinds (heartbeats), which are not stored and always count as new."""
    plan: Sequence[Statement] | None
    """A planned handler's statements; None: its handler runs (if it has one)."""


def prepare(item: Delivered) -> Prepared:
    e = item.envelope
    row = None
    if not isinstance(e.data, UNSTORED):
        row = (
            e.id,
            item.topic,
            item.partition,
            item.offset,
            e.aggregate_key,
            e.data.type,
            e.time,
            e.sequence,
            e.source,
            e.schema_version,
            e.correlation_id,
            e.causation_id,
            item.traceparent,
            _data_json(e),
        )
    handler = handler_for(type(e.data))
    plan = handler.plan(e) if isinstance(handler, PlannedHandler) else None
    return Prepared(item, row, plan)


# The same insert, and in the same round trip the stored offsets of the topics $15 (their
# rows locked), which the projector compares with those it last wrote.
_INSERT_EVENTS_READING_OFFSETS = f"""
WITH inserted AS (
{_INSERT_EVENTS.strip()}
), stored AS (
    SELECT topic, kafka_partition, next_offset FROM projector_offsets
    WHERE topic = ANY($15::text[]) FOR UPDATE
)
SELECT event_id, NULL::text AS topic, NULL::integer AS kafka_partition,
       NULL::bigint AS next_offset
FROM inserted
UNION ALL
SELECT NULL, topic, kafka_partition, next_offset FROM stored
"""

Offsets = dict[tuple[str, int], int]
"""Stored next offsets by (topic, partition)."""


async def store_raw(conn: asyncpg.Connection, items: Sequence[Prepared]) -> list[bool]:
    """Insert the raw envelopes; True for each item whose event id is new (the first
    copy of an id repeated within ``items`` is the one stored). Items without a row
    always count as new: their handlers are idempotent."""
    first = _first_copies(items)
    if not first:
        return [item.row is None for item in items]
    inserted = {r[0] for r in await conn.fetch(_INSERT_EVENTS, *_columns(items, first))}
    return _new(items, first, inserted)


async def store_raw_reading_offsets(
    conn: asyncpg.Connection, items: Sequence[Prepared], topics: Sequence[str]
) -> tuple[list[bool], Offsets]:
    """:func:`store_raw`, and the stored offsets of ``topics`` (rows locked ``FOR
    UPDATE`` until the transaction ends), in one round trip."""
    first = _first_copies(items)
    rows = await conn.fetch(_INSERT_EVENTS_READING_OFFSETS, *_columns(items, first), topics)
    inserted = {r[0] for r in rows if r[0] is not None}
    offsets = {(r[1], r[2]): r[3] for r in rows if r[0] is None}
    return _new(items, first, inserted), offsets


def _first_copies(items: Sequence[Prepared]) -> dict[str, int]:
    """Per event id with a row, the position of its first copy in ``items``."""
    first: dict[str, int] = {}
    for i, item in enumerate(items):
        if item.row is not None:
            first.setdefault(item.delivered.envelope.id, i)
    return first


def _columns(items: Sequence[Prepared], first: dict[str, int]) -> list[list[Any]]:
    """The ``events`` rows of the first copies, as the insert's 14 column arrays."""
    rows = [items[i].row for i in first.values()]
    if not rows:
        return [[] for _ in range(_EVENT_COLUMNS)]
    return [list(column) for column in zip(*rows, strict=True)]


def _new(items: Sequence[Prepared], first: dict[str, int], inserted: set[str]) -> list[bool]:
    return [
        item.row is None
        or (first[item.delivered.envelope.id] == i and item.delivered.envelope.id in inserted)
        for i, item in enumerate(items)
    ]


async def apply_events(
    conn: asyncpg.Connection,
    items: Sequence[Prepared],
    dispatcher: Dispatcher | None,
    *,
    finish: Callable[[list[bool]], Statement] | None = None,
    new: list[bool] | None = None,
) -> list[bool]:
    """Project ``items`` (in delivery order) in the caller's transaction. Returns, per
    item, whether it was new (False: its event id was already projected).

    ``finish(new)`` gives a last statement (the projector's offsets), sent with the last
    planned statements when the dispatcher knows it. Without a dispatcher every handler
    runs on its own, statement by statement. ``new``: the raw envelopes are stored
    already (:func:`store_raw_reading_offsets`), and this is what that returned."""
    if new is None:
        new = await store_raw(conn, items)
    pending: list[list[Any]] = []  # dispatcher rows not yet sent

    async def send(sql: str, args: Sequence[Any]) -> None:
        row = dispatcher.row(sql, args) if dispatcher is not None else None
        if row is not None:
            pending.append(row)
            return
        note_unregistered(sql)
        if dispatcher is not None:
            await dispatcher.run(conn, pending)
        await conn.execute(sql, *args)

    for item, is_new in zip(items, new, strict=True):
        if not is_new:
            continue
        if item.plan is not None:
            for sql, args in item.plan:
                await send(sql, args)
            continue
        envelope = item.delivered.envelope
        handler = handler_for(type(envelope.data))
        if handler is None:
            continue
        if dispatcher is not None:
            await dispatcher.run(conn, pending)
        await handler(conn, envelope)
    if finish is not None:
        await send(*finish(new))
    if dispatcher is not None:
        await dispatcher.run(conn, pending)
    return new
