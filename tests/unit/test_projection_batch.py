"""The batch scheduler keeps conflicting events in log order and groups the rest; the
read-your-writes and stream positions round-trip. Pure: a fake connection records."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import TopicPartition
from ledgerflow.api.positions import Position
from ledgerflow.api.projection_batch import _Segment
from ledgerflow.api.routes.events_stream import decode_token, encode_token
from ledgerflow.common.topics import Topics


class RecordingConnection:
    def __init__(self) -> None:
        self.calls: list[tuple[str, list[tuple[Any, ...]]]] = []

    async def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self.calls.append((sql, list(rows)))


def run(segment: _Segment) -> list[tuple[str, list[tuple[Any, ...]]]]:
    conn = RecordingConnection()
    asyncio.run(segment.flush(conn))  # type: ignore[arg-type]
    return conn.calls


def flattened(calls: list[tuple[str, list[tuple[Any, ...]]]]) -> list[tuple[str, Any]]:
    return [(sql, row[0]) for sql, rows in calls for row in rows]


def test_disjoint_events_share_one_executemany_per_statement() -> None:
    s = _Segment()
    for n in range(3):
        s.add(("run", "d", "r", "ti", f"t{n}", -1), [("A", (n,)), ("B", (n,))])
    assert run(s) == [("A", [(0,), (1,), (2,)]), ("B", [(0,), (1,), (2,)])]


def test_same_key_keeps_order_and_each_plan_its_own_order() -> None:
    s = _Segment()
    ti = ("run", "d", "r", "ti", "t", -1)
    s.add(ti, [("QUEUE", ("q1",)), ("ATTEMPT", ("q1",))])
    s.add(("run", "d", "r", "ti", "u", -1), [("QUEUE", ("u1",))])
    s.add(ti, [("START", ("s1",)), ("ATTEMPT", ("s1",))])
    order = flattened(run(s))
    assert order.index(("QUEUE", "q1")) < order.index(("ATTEMPT", "q1"))
    assert order.index(("ATTEMPT", "q1")) < order.index(("START", "s1"))
    assert order.index(("START", "s1")) < order.index(("ATTEMPT", "s1"))
    assert order[:2] == [("QUEUE", "q1"), ("QUEUE", "u1")]  # grouped in generation 0


def test_a_covering_key_orders_against_everything_under_it() -> None:
    s = _Segment()
    s.add(("run", "d", "r", "ti", "t", -1), [("TI", ("before",))])
    s.add(("run", "d", "r"), [("RUN", ("queued",))])  # covers the task instances
    s.add(("run", "d", "r", "ti", "t", -1), [("TI", ("after",))])
    s.add(("run", "d", "other", "ti", "t", -1), [("TI", ("elsewhere",))])
    assert flattened(run(s)) == [
        ("TI", "before"),
        ("TI", "elsewhere"),
        ("RUN", "queued"),
        ("TI", "after"),
    ]


def test_positions_and_stream_tokens_round_trip() -> None:
    assert Position.parse("p.runs:3:42") == Position("p.runs", 3, 42)
    assert str(Position("p.runs", 3, 42)) == "p.runs:3:42"
    for bad in ("x", "a:b:c", "t:-1:2"):
        with pytest.raises(ValueError):
            Position.parse(bad)
    topics = Topics("p")
    positions = {TopicPartition("p.runs", 1): 7, TopicPartition("p.config", 0): 2}
    token = encode_token(topics, positions)
    assert token == "config.0=2,runs.1=7"
    assert decode_token(topics, token) == positions
    with pytest.raises(ValueError):
        decode_token(topics, "work.0=1")


def test_every_event_topic_has_a_stream_token_name() -> None:
    """The stream's resume token names each topic the projector (and the stream) reads:
    a new event topic without a short name broke every stream on its first event."""
    topics = Topics("p")
    positions = {TopicPartition(t, 0): 1 for t in topics.event_topics}
    assert decode_token(topics, encode_token(topics, positions)) == positions
