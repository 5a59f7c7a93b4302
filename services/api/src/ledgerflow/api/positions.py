"""Read-your-writes: writes say where their events landed, reads can wait for them.

- Every event the API publishes while answering a request is recorded (a producer that
  notes each acknowledged ``topic:partition:offset``), and a middleware puts them on
  the response as ``Ledgerflow-Event-Position: topic:partition:offset[,...]`` unless
  the route set that header itself (variables and connections do, with the same shape).
- Every ``/api/v2`` request accepts ``wait_for=<position>`` (repeatable, or
  comma-separated) and waits, before the route runs, until the projector has stored an
  offset past each position, i.e. until those events' rows are committed. A position
  on the commands topic also waits for the command's first consequence (an event whose
  causation id is the command's id, e.g. ``DagRunQueued`` or ``TriggerRejected`` for
  ``TriggerDagRun``): the projection of a command alone changes no read table, so
  "trigger, then read my run" needs the scheduler's answer too.
- The wait is bounded (``wait_timeout``, default and maximum 5 s). When it runs out the
  answer is ``504`` with ``Retry-After: 1``, never stale data that looks current: a
  client that asked to read its write can retry, a client that did not ask never waits.

One mechanism for every route: a producer subclass, a middleware and one router
dependency (see :func:`wait_for_positions`); no route does anything for it.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import asyncpg
from fastapi import HTTPException, Query, Request, status
from ledgerflow.common import events as ev
from ledgerflow.common.kafka_io import EventProducer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "Ledgerflow-Event-Position"
MAX_WAIT_S = 5.0
POLL_INTERVAL_S = 0.01


@dataclass(frozen=True, order=True)
class Position:
    """Where an event sits in the log: ``topic:partition:offset``."""

    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"

    @classmethod
    def parse(cls, text: str) -> Position:
        """Raises ValueError for anything but ``topic:partition:offset`` (topic names
        cannot contain ``:``)."""
        topic, partition, offset = text.strip().rsplit(":", 2)
        if not topic or int(partition) < 0 or int(offset) < 0:
            raise ValueError(text)
        return cls(topic, int(partition), int(offset))


def format_positions(positions: Sequence[Position]) -> str:
    return ",".join(str(p) for p in positions)


# --------------------------------------------------------------------------- writes
_written: contextvars.ContextVar[list[Position] | None] = contextvars.ContextVar(
    "ledgerflow_written_positions", default=None
)


class PositionRecordingProducer(EventProducer):  # type: ignore[misc]
    """An :class:`EventProducer` that notes where each acknowledged event landed, for the
    request being answered (if any)."""

    async def send_soon(
        self,
        topic: str,
        envelope: ev.Envelope,
        *,
        key: str | None = None,
        traceparent: str | None = None,
    ) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = await super().send_soon(
            topic, envelope, key=key, traceparent=traceparent
        )
        written = _written.get()
        if written is not None:

            def record(done: asyncio.Future[Any]) -> None:
                if not done.cancelled() and done.exception() is None:
                    meta = done.result()
                    written.append(Position(meta.topic, meta.partition, meta.offset))

            # Runs before the sender's ``await`` resumes (callbacks run in order).
            fut.add_done_callback(record)
        return fut


class EventPositionMiddleware:
    """Adds ``Ledgerflow-Event-Position`` to responses of requests that wrote events."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        written: list[Position] = []
        token = _written.set(written)

        async def send_with_position(message: Message) -> None:
            if message["type"] == "http.response.start" and written:
                headers = list(message.get("headers", []))
                name = HEADER.lower().encode()
                if not any(k.lower() == name for k, _ in headers):
                    headers.append((name, format_positions(written).encode()))
                    message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_position)
        finally:
            _written.reset(token)


# --------------------------------------------------------------------------- reads
_STORED = "SELECT next_offset FROM projector_offsets WHERE topic = $1 AND kafka_partition = $2"
# The command at a position (commands are few: a partial index serves this).
_COMMAND_AT = """
SELECT event_id, aggregate_key, event_time FROM events
WHERE topic = $1 AND kafka_partition = $2 AND kafka_offset = $3 AND topic LIKE '%.commands'
"""
# Its first consequence: the scheduler answers on the same DAG (aggregate), later. The
# window allows for clock skew between the API's and the scheduler's hosts.
_CONSEQUENCE = """
SELECT 1 FROM events WHERE aggregate_key = $1 AND event_time >= $2::timestamptz - interval '5 minutes'
                       AND causation_id = $3 LIMIT 1
"""


async def _reached(conn: asyncpg.Connection, position: Position, commands_topic: str) -> bool:
    stored = await conn.fetchval(_STORED, position.topic, position.partition)
    if stored is None or stored <= position.offset:
        return False
    if position.topic != commands_topic:
        return True
    command = await conn.fetchrow(_COMMAND_AT, position.topic, position.partition, position.offset)
    if command is None:  # not an event (e.g. malformed, dead-lettered): nothing to wait for
        return True
    return bool(
        await conn.fetchval(
            _CONSEQUENCE, command["aggregate_key"], command["event_time"], command["event_id"]
        )
    )


async def wait_until_projected(
    pool: asyncpg.Pool,
    positions: Sequence[Position],
    *,
    commands_topic: str,
    timeout_s: float,
) -> list[Position]:
    """Wait until every position is projected; returns those still missing at the end."""
    missing = sorted(set(positions))
    deadline = time.monotonic() + timeout_s
    while True:
        async with pool.acquire() as conn:
            missing = [p for p in missing if not await _reached(conn, p, commands_topic)]
        if not missing or time.monotonic() >= deadline:
            return missing
        await asyncio.sleep(POLL_INTERVAL_S)


async def wait_for_positions(
    request: Request,
    wait_for: Annotated[
        list[str] | None,
        Query(
            description="Positions (`topic:partition:offset`, from a write's "
            f"`{HEADER}` header) to wait for before answering; repeat or comma-separate."
        ),
    ] = None,
    wait_timeout: Annotated[
        float,
        Query(gt=0, le=MAX_WAIT_S, description="Longest wait for `wait_for`, seconds."),
    ] = MAX_WAIT_S,
) -> None:
    """Router dependency: hold the request until the projection has the given events."""
    if not wait_for:
        return
    ctx = request.app.state.ctx
    topics = set(ctx.settings.topics.event_topics)
    try:
        positions = [Position.parse(t) for item in wait_for for t in item.split(",") if t.strip()]
    except ValueError:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"wait_for must be topic:partition:offset (as in the {HEADER} header)",
        ) from None
    unknown = sorted({p.topic for p in positions} - topics)
    if unknown:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"wait_for names topics the projection does not read: {', '.join(unknown)}",
        )
    missing = await wait_until_projected(
        ctx.pool, positions, commands_topic=ctx.settings.topics.commands, timeout_s=wait_timeout
    )
    if missing:
        raise HTTPException(
            status.HTTP_504_GATEWAY_TIMEOUT,
            f"The projection did not reach {format_positions(missing)} within "
            f"{wait_timeout:g} s; retry (the events are safely written).",
            headers={"Retry-After": "1"},
        )
