"""The batch path sends planned statements in delivery order through the dispatch
function, one round trip per run of planned events; the read-your-writes and stream
positions round-trip. Pure: a fake connection records."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import TopicPartition
from ledgerflow.api import projection_tasks
from ledgerflow.api.positions import Position
from ledgerflow.api.projection_batch import Delivered, Prepared, apply_events, prepare
from ledgerflow.api.projection_dispatch import Dispatcher, dispatch_function
from ledgerflow.api.routes.events_stream import decode_token, encode_token
from ledgerflow.common import events as ev
from ledgerflow.common.topics import Topics


class RecordingConnection:
    """Every event id is new; statements are recorded in the order they are sent."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    async def fetch(self, sql: str, *columns: list[Any]) -> list[tuple[str]]:
        self.calls.append(("raw", len(columns[0])))
        return [(event_id,) for event_id in columns[0]]

    async def executemany(self, sql: str, rows: list[list[Any]]) -> None:
        self.calls.append(("dispatch", [tuple(r) for r in rows]))

    async def execute(self, sql: str, *args: Any) -> None:
        self.calls.append(("execute", " ".join(sql.split())[:40]))


def test_the_function_gives_each_type_its_slots_and_renumbers_the_parameters() -> None:
    statements = ["UPDATE a SET x = $3 WHERE k = $1 AND n = $2", "DELETE FROM b WHERE t < $1"]
    types = [["text", "integer", "text"], ["timestamp with time zone"]]
    name, create, width, layout = dispatch_function(statements, types)
    # $1 picks the statement; then integer (1 slot), text (2), timestamptz (1).
    assert width == 5
    assert layout[statements[0]] == (0, (2, 1, 3))  # row positions of $1, $2, $3
    assert layout[statements[1]] == (1, (4,))
    assert f"CREATE FUNCTION {name}(integer, integer, text, text, timestamp with time zone)" in (
        create
    )
    assert "WHEN 0 THEN\nUPDATE a SET x = $4 WHERE k = $3 AND n = $2\n  ;" in create
    assert "WHEN 1 THEN\nDELETE FROM b WHERE t < $5\n  ;" in create
    # The name is the text's hash: the same statements give the same function.
    assert dispatch_function(statements, types)[0] == name
    assert dispatch_function(statements[:1], types[:1])[0] != name


def test_a_row_puts_each_argument_in_its_slot() -> None:
    d = Dispatcher(name="f", width=5, layout={"S": (1, (4, 1))})
    assert d.row("S", ("a", 7)) == [1, 7, None, None, "a"]
    assert d.row("unknown", ()) is None
    assert d.call == "SELECT f($1, $2, $3, $4, $5)"
    with pytest.raises(ValueError):
        d.row("S", ("too", "many", "arguments"))


def _prepared(payload: Any, n: int) -> Prepared:
    envelope = ev.Envelope(
        id=f"e{n}",
        source="test",
        time=datetime(2026, 1, 1, tzinfo=UTC),
        aggregate_key="d",
        data=payload,
    )
    return prepare(Delivered(envelope, "p.runs", 0, n, None))


def test_planned_events_go_in_order_and_an_unplanned_one_splits_the_round_trips() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    ti = {"dag_id": "d", "run_id": "r", "task_id": "t", "map_index": -1, "try_number": 1}
    items = [
        _prepared(ev.TaskInstanceQueued(**ti, queue="q", queued_when=at), 0),
        _prepared(ev.TaskAttemptStarted(**ti, start_date=at, hostname="h", executor_id="x"), 1),
        _prepared(
            ev.TaskInstanceMapExpanded(dag_id="d", run_id="r", task_id="m", length=2, at=at), 2
        ),
        _prepared(ev.DagRunSucceeded(dag_id="d", run_id="r", end_date=at), 3),
    ]
    # A dispatcher that knows every statement but the run's: that one runs on its own.
    known = [projection_tasks._QUEUED, projection_tasks._STARTED]
    arity = [max(int(n) for n in re.findall(r"\$(\d+)", sql)) for sql in known]
    name, _, width, layout = dispatch_function(known, [["text"] * n for n in arity])
    d = Dispatcher(name=name, width=width, layout=layout)
    conn = RecordingConnection()
    new = asyncio.run(apply_events(conn, items, d))  # type: ignore[arg-type]
    assert new == [True] * 4
    kinds = [c[0] for c in conn.calls]
    # raw events; queued + started (a statement each) in one round trip; the map
    # expansion's own statements; the run's statement, unknown to this dispatcher.
    assert kinds[:2] == ["raw", "dispatch"]
    assert [row[0] for row in conn.calls[1][1]] == [0, 1]  # the plans' order
    assert all(k == "execute" for k in kinds[2:])
    assert conn.calls[-1][1].startswith("UPDATE dag_runs SET state = 'success'")


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


def test_a_statement_with_a_dollar_in_a_string_is_refused() -> None:
    """Parameters are renumbered as text: a ``$1`` inside a string literal would be too."""
    with pytest.raises(ValueError, match="quoted string"):
        dispatch_function(["UPDATE a SET note = 'costs $1' WHERE k = $1"], [["text"]])
