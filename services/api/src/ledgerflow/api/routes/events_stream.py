"""``GET /api/v2/events/stream``: the event log as server-sent events, from Kafka.

Each connection has its own consumer without a group, assigned every partition of the
event topics (DAGs, commands, run log, logs, config) and seeked to the client's
position, so streams are independent of each other and of the projection (no Postgres
polling: an event is streamed as soon as Kafka has it, before it is projected).

- ``id:`` is a resume token: the next offset of every partition after this event
  (``runs.0=12,runs.1=7,...``; topic names without the deployment's prefix).
  ``Last-Event-ID`` (what ``EventSource`` sends on reconnect) or ``?from=<token>``
  resumes right after that event; ``?from=beginning`` replays the whole log; without
  either the stream starts at the end (new events only).
- ``event:`` is the CloudEvents type (``io.ledgerflow.TaskAttemptStarted``) and
  ``data:`` the envelope exactly as on the topic (CloudEvents JSON).
- ``?dag_id=``, ``?run_id=`` and ``?types=`` (CloudEvents or payload type names,
  repeated or comma-separated) filter; a filtered-out event still moves the position.
- A comment line (``: heartbeat``) every 15 s keeps proxies from closing an idle stream.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterable
from typing import Annotated, Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from fastapi import APIRouter, Header, HTTPException, Query, status
from fastapi.responses import StreamingResponse
from ledgerflow.api.deps import Context
from ledgerflow.api.topology import partitions_of
from ledgerflow.common.events import CLOUDEVENTS_TYPE_PREFIX
from ledgerflow.common.kafka_io import consumer_config, kafka_client_kwargs
from ledgerflow.common.topics import Topics

router = APIRouter(prefix="/events", tags=["Event"])

HEARTBEAT_S = 15.0
_TOPIC_NAMES = ("dags", "commands", "runs", "logs", "config", "assets")


def encode_token(topics: Topics, positions: dict[TopicPartition, int]) -> str:
    short = {getattr(topics, n): n for n in _TOPIC_NAMES}
    return ",".join(
        f"{short[tp.topic]}.{tp.partition}={offset}"
        for tp, offset in sorted(positions.items(), key=lambda kv: (kv[0].topic, kv[0].partition))
    )


def decode_token(topics: Topics, token: str) -> dict[TopicPartition, int]:
    """Raises ValueError for anything that is not a token this API wrote."""
    out: dict[TopicPartition, int] = {}
    for part in token.split(","):
        name_partition, _, offset = part.partition("=")
        name, _, partition = name_partition.rpartition(".")
        if name not in _TOPIC_NAMES or int(partition) < 0 or int(offset) < 0:
            raise ValueError(part)
        out[TopicPartition(getattr(topics, name), int(partition))] = int(offset)
    return out


class _Filter:
    def __init__(self, dag_id: str | None, run_id: str | None, types: Iterable[str]) -> None:
        self.dag_id = dag_id
        self.run_id = run_id
        wanted = {t.strip() for item in types for t in item.split(",") if t.strip()}
        self.types = {
            t if t.startswith(CLOUDEVENTS_TYPE_PREFIX) else CLOUDEVENTS_TYPE_PREFIX + t
            for t in wanted
        }

    def __call__(self, doc: dict[str, Any]) -> bool:
        raw = doc.get("data")
        data: dict[str, Any] = raw if isinstance(raw, dict) else {}
        if self.types and doc.get("type") not in self.types:
            return False
        if self.dag_id is not None and self.dag_id not in (
            data.get("dag_id"),
            doc.get("aggregatekey"),
        ):
            return False
        return self.run_id is None or self.run_id in (data.get("run_id"), doc.get("correlationid"))


async def _start_consumer(ctx: Any, start: str | dict[TopicPartition, int]) -> AIOKafkaConsumer:
    settings = ctx.settings
    admin = AIOKafkaAdminClient(**kafka_client_kwargs(settings))
    await admin.start()
    try:
        partitions = await partitions_of(admin, settings.topics.event_topics)
    finally:
        await admin.close()
    config = consumer_config(settings)
    config.update(group_id=None, enable_auto_commit=False, isolation_level="read_committed")
    consumer = AIOKafkaConsumer(**config)
    await consumer.start()
    try:
        consumer.assign(partitions)
        if start == "end":
            await consumer.seek_to_end(*partitions)
        elif start == "beginning":
            await consumer.seek_to_beginning(*partitions)
        else:
            assert isinstance(start, dict)
            for tp in partitions:
                # A partition the token does not know (added since) starts at its beginning.
                consumer.seek(tp, start.get(tp, 0))
        for tp in partitions:  # resolve now: the stream starts here, not when read
            await consumer.position(tp)
    except BaseException:
        await consumer.stop()
        raise
    return consumer


async def _events(
    consumer: AIOKafkaConsumer, topics: Topics, keep: _Filter, heartbeat_s: float
) -> AsyncIterator[bytes]:
    try:
        positions = {tp: await consumer.position(tp) for tp in consumer.assignment()}
        yield b": connected\n\n"
        last_sent = time.monotonic()
        while True:
            batch = await consumer.getmany(timeout_ms=int(min(heartbeat_s, 1.0) * 1000))
            for tp, records in batch.items():
                for record in records:
                    positions[tp] = record.offset + 1
                    try:
                        doc = json.loads(record.value)
                    except (TypeError, ValueError):
                        continue  # not an envelope (the projector dead-letters these)
                    if not isinstance(doc, dict) or not keep(doc):
                        continue
                    data = record.value.decode()
                    if "\n" in data or "\r" in data:
                        data = json.dumps(doc)
                    token = encode_token(topics, positions)
                    yield f"id: {token}\nevent: {doc.get('type', '')}\ndata: {data}\n\n".encode()
                    last_sent = time.monotonic()
            if time.monotonic() - last_sent >= heartbeat_s:
                yield b": heartbeat\n\n"
                last_sent = time.monotonic()
    finally:
        await consumer.stop()


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, 400: {}},
)
async def stream_events(
    ctx: Context,
    dag_id: str | None = None,
    run_id: str | None = None,
    types: Annotated[list[str] | None, Query()] = None,
    from_: Annotated[
        str | None,
        Query(alias="from", description="`beginning`, `end` (default) or a resume token"),
    ] = None,
    last_event_id: Annotated[str | None, Header()] = None,
    heartbeat: Annotated[float, Query(ge=0.05, le=300)] = HEARTBEAT_S,
) -> StreamingResponse:
    """Server-sent events of every envelope on the event topics (ledgerflow's addition)."""
    topics = ctx.settings.topics
    resume = last_event_id or from_ or "end"
    start: str | dict[TopicPartition, int]
    if resume in ("beginning", "end"):
        start = resume
    else:
        try:
            start = decode_token(topics, resume)
        except ValueError:
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST,
                "from / Last-Event-ID must be 'beginning', 'end' or an id from this stream",
            ) from None
    consumer = await _start_consumer(ctx, start)
    return StreamingResponse(
        _events(consumer, topics, _Filter(dag_id, run_id, types or ()), heartbeat),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
