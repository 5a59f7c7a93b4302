"""Projecting a fetched batch of events with few round trips, same rows as one by one.

:func:`apply_events` is the projector's fast path. It does in one transaction (the
caller's) what :func:`ledgerflow.api.projection.apply_event` does for each event in
turn, and gives the same rows:

1. the raw envelopes go into ``events`` with one ``INSERT ... SELECT FROM unnest(...)
   ON CONFLICT DO NOTHING RETURNING event_id``: the ids it returns are the new events
   (a repeated id, in the batch or from before, is a duplicate and is not handled again);
2. the new events are handled in delivery order, except that consecutive events whose
   handlers are :class:`~ledgerflow.api.projection.PlannedHandler` objects form a
   *segment* that is reordered where that cannot matter: events whose keys do not
   cover one another touch disjoint rows and commute, so only conflicting events keep
   their order (see :class:`_Segment`) and statements of the same SQL run together in
   one ``executemany``. Any other handler (the registry's plain ``async handler(conn,
   env)``) closes the segment and runs alone, in order.

No handler reads ``events``, so storing every raw envelope first changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from ledgerflow.api.projection import UNSTORED, PlannedHandler, Statement, handler_for
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


def _data_json(envelope: ev.Envelope) -> str:
    # The same document as ``envelope.model_dump(mode="json", by_alias=True)["data"]``
    # (what apply_event stores), serialized by pydantic's core instead of json.dumps.
    data: str = envelope.data.model_dump_json(by_alias=True)
    return data


async def store_raw(conn: asyncpg.Connection, items: Sequence[Delivered]) -> list[bool]:
    """Insert the raw envelopes; True for each item whose event id is new (the first
    copy of an id repeated within ``items`` is the one stored). Events of the
    :data:`~ledgerflow.api.projection.UNSTORED` kinds (heartbeats) are not stored and
    always count as new: their handlers are idempotent."""
    first: dict[str, int] = {}
    for i, item in enumerate(items):
        if not isinstance(item.envelope.data, UNSTORED):
            first.setdefault(item.envelope.id, i)
    rows = [items[i] for i in first.values()]
    if not rows:
        return [isinstance(item.envelope.data, UNSTORED) for item in items]
    columns: list[list[Any]] = [[] for _ in range(14)]
    for item in rows:
        e = item.envelope
        for col, value in zip(
            columns,
            (
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
            ),
            strict=True,
        ):
            col.append(value)
    inserted = {r[0] for r in await conn.fetch(_INSERT_EVENTS, *columns)}
    return [
        isinstance(item.envelope.data, UNSTORED)
        or (first[item.envelope.id] == i and item.envelope.id in inserted)
        for i, item in enumerate(items)
    ]


class _Segment:
    """Plans of planned events between two unplanned ones, run by generations.

    An event's generation is one more than the highest generation of the earlier events
    in the segment whose keys cover its key or are covered by it (0 if none). Running
    generation after generation keeps every pair of conflicting events in delivery order;
    events in one generation touch disjoint rows, so each generation runs layer by layer
    (every plan's first statement, grouped by SQL into one ``executemany``, then every
    second statement, ...), which keeps each event's own statements in order.
    """

    def __init__(self) -> None:
        self.generations: list[list[Sequence[Statement]]] = []
        self._exact: dict[tuple[Any, ...], int] = {}  # highest generation with this key
        self._under: dict[tuple[Any, ...], int] = {}  # ... with a key this prefixes
        self.size = 0

    def add(self, key: tuple[Any, ...], plan: Sequence[Statement]) -> None:
        g = self._under.get(key, -1)
        for i in range(1, len(key)):
            g = max(g, self._exact.get(key[:i], -1))
        g += 1
        if g == len(self.generations):
            self.generations.append([])
        self.generations[g].append(plan)
        self._exact[key] = max(self._exact.get(key, -1), g)
        for i in range(1, len(key) + 1):
            prefix = key[:i]
            self._under[prefix] = max(self._under.get(prefix, -1), g)
        self.size += 1

    async def flush(self, conn: asyncpg.Connection) -> int:
        """Run the plans; returns the number of round trips (``executemany`` calls)."""
        generations = self.generations
        self.__init__()  # type: ignore[misc]
        calls = 0
        for plans in generations:
            depth = max(len(p) for p in plans)
            for layer in range(depth):
                groups: dict[str, list[tuple[Any, ...]]] = {}
                for plan in plans:
                    if layer < len(plan):
                        sql, args = plan[layer]
                        groups.setdefault(sql, []).append(args)
                for sql, rows in groups.items():
                    await conn.executemany(sql, rows)
                    calls += 1
        return calls


async def apply_events(conn: asyncpg.Connection, items: Sequence[Delivered]) -> list[bool]:
    """Project ``items`` (in delivery order) in the caller's transaction. Returns, per
    item, whether it was new (False: its event id was already projected)."""
    new = await store_raw(conn, items)
    segment = _Segment()
    for item, is_new in zip(items, new, strict=True):
        if not is_new:
            continue
        envelope = item.envelope
        handler = handler_for(type(envelope.data))
        if handler is None:
            continue
        if isinstance(handler, PlannedHandler):
            segment.add(handler.key(envelope), handler.plan(envelope))
            continue
        if segment.size:
            await segment.flush(conn)
        await handler(conn, envelope)
    if segment.size:
        await segment.flush(conn)
    return new
