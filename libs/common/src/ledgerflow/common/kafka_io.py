"""Thin Kafka adapter over aiokafka: topic set-up, an envelope producer, dead letters.

Correctness never rests on Kafka transactions or idempotent producers: every message
carries a deterministic id and every reader is idempotent (docs/adr/0002, 0003). The
producer sends at once (``linger_ms=0``) because the hot path is latency-bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # type: ignore[import-untyped]
from aiokafka.errors import TopicAlreadyExistsError  # type: ignore[import-untyped]
from aiokafka.helpers import create_ssl_context
from ledgerflow.common import metrics, telemetry
from ledgerflow.common.events import CONTENT_TYPE, Envelope, MalformedMessage, decode, encode
from ledgerflow.common.settings import Settings

log = logging.getLogger(__name__)

RETENTION_FOREVER = {"retention.ms": "-1", "retention.bytes": "-1"}
DLQ_HEADER_PREFIX = "ledgerflow-dlq-"


def kafka_client_kwargs(settings: Settings) -> dict[str, Any]:
    """Where the brokers are and how to talk to them: the keyword arguments every aiokafka
    client takes alike (``AIOKafkaProducer``, ``AIOKafkaConsumer``, ``AIOKafkaAdminClient``).

    Build every client from this (``AIOKafkaAdminClient(**kafka_client_kwargs(s))``) so
    that TLS and SASL settings reach all of them. SCRAM takes aiokafka's
    ``sasl_plain_username``/``sasl_plain_password`` too. The TLS context is made per call
    so a rotated certificate file is picked up by the next client.
    """
    kwargs: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        key_password = settings.kafka_ssl_key_password
        kwargs["ssl_context"] = create_ssl_context(
            cafile=settings.kafka_ssl_cafile,
            certfile=settings.kafka_ssl_certfile,
            keyfile=settings.kafka_ssl_keyfile,
            password=key_password.get_secret_value() if key_password else None,
        )
    if settings.kafka_security_protocol.startswith("SASL_"):
        password = settings.kafka_sasl_password
        kwargs["sasl_mechanism"] = settings.kafka_sasl_mechanism
        kwargs["sasl_plain_username"] = settings.kafka_sasl_username
        kwargs["sasl_plain_password"] = password.get_secret_value() if password else None
    return kwargs


# How long the broker holds a fetch that finds no new data (a long poll). Data that
# arrives meanwhile answers the fetch at once (``fetch_min_bytes`` is 1), so this bounds
# only how often an idle consumer asks again, not how soon it sees a record: a hop
# measured the same at 5 and at 500 ms (ADR 0016; docs/performance.md, "Long-poll
# fetches"), while at 5 ms every idle hot consumer sent ~200 fetch requests a second,
# which cost its service and the broker about a tenth of a core each.
HOT_FETCH_MAX_WAIT_MS = 100


def consumer_config(settings: Settings) -> dict[str, Any]:
    """Common aiokafka consumer settings: woken by data, not by a poll interval."""
    return {
        **kafka_client_kwargs(settings),
        "fetch_max_wait_ms": HOT_FETCH_MAX_WAIT_MS,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "metadata_max_age_ms": 5_000,
    }


# Readers of topics off the hot path (DAG versions, config, control, assets) need not
# poll every 5 ms: a fetch that finds nothing waits this long at the broker, and new data
# still answers it at once. At 5 ms each idle reader sent ~200 fetch requests a second,
# about a quarter of every service's CPU on the chain benchmark (py-spy, issue 4).
BACKGROUND_FETCH_MAX_WAIT_MS = 250


def background_consumer_config(settings: Settings) -> dict[str, Any]:
    """:func:`consumer_config` for a reader off the hot path (see above)."""
    return {**consumer_config(settings), "fetch_max_wait_ms": BACKGROUND_FETCH_MAX_WAIT_MS}


async def stop_reader(task: asyncio.Task[Any] | None, consumer: Any | None) -> None:
    """Stop a background reader: cancel its loop task and wait for it, then stop its
    consumer (a failure to leave cleanly is not worth an error at shutdown)."""
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    if consumer is not None:
        with contextlib.suppress(Exception):
            await consumer.stop()


async def ensure_topics(settings: Settings, *, queues: Iterable[str] = ("default",)) -> None:
    """Create ledgerflow's topics if they are missing. Safe to call from every service.

    DAG, command and run-log topics share one partition count so that partition *p* of
    each holds the same DAGs (co-partitioning; docs/adr/0002). Event topics keep their
    data forever.
    """
    t = settings.topics
    wanted: list[NewTopic] = [
        NewTopic(
            name,
            settings.partitions,
            settings.replication_factor,
            topic_configs=dict(RETENTION_FOREVER),
        )
        for name in (t.dags, t.commands, t.runs)
    ]
    wanted.append(
        NewTopic(
            t.logs,
            settings.work_partitions,
            settings.replication_factor,
            topic_configs=dict(RETENTION_FOREVER),
        )
    )
    wanted.append(
        NewTopic(t.config, 1, settings.replication_factor, topic_configs=dict(RETENTION_FOREVER))
    )
    # Asset events: one partition, so offsets order them for every scheduler (ADR 0013).
    wanted.append(
        NewTopic(t.assets, 1, settings.replication_factor, topic_configs=dict(RETENTION_FOREVER))
    )
    wanted.append(
        NewTopic(
            t.dead_letters, 1, settings.replication_factor, topic_configs=dict(RETENTION_FOREVER)
        )
    )
    # Cancels are instructions for attempts running now: a day is plenty.
    wanted.append(
        NewTopic(
            t.control, 1, settings.replication_factor, topic_configs={"retention.ms": "86400000"}
        )
    )
    wanted.append(
        NewTopic(
            t.heartbeats,
            1,
            settings.replication_factor,
            topic_configs={"retention.ms": "86400000"},
        )
    )
    for q in queues:
        # Work items are instructions, not history: seven days is plenty.
        wanted.append(
            NewTopic(
                t.work(q),
                settings.work_partitions,
                settings.replication_factor,
                topic_configs={"retention.ms": str(7 * 24 * 3600 * 1000)},
            )
        )
    admin = AIOKafkaAdminClient(**kafka_client_kwargs(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [nt for nt in wanted if nt.name not in existing]
        if not missing:
            return
        try:
            resp = await admin.create_topics(missing)
        except TopicAlreadyExistsError:
            return
        for err in getattr(resp, "topic_errors", []) or []:
            name, code = err[0], err[1]
            if code not in (0, 36):  # 36 = TOPIC_ALREADY_EXISTS (a racing service made it)
                raise RuntimeError(f"could not create topic {name}: error code {code} {err[2:]}")
        # Wait until the new topics are visible in metadata, so consumers can subscribe.
        for _ in range(100):
            if {nt.name for nt in missing} <= set(await admin.list_topics()):
                break
            await asyncio.sleep(0.05)
    finally:
        await admin.close()


def derived_traceparent(envelope: Envelope) -> str:
    """A W3C ``traceparent`` whose trace id is derived from the run (correlation id).

    Used when the caller has no active span: a run stays one trace across process
    restarts because nothing about it is held in memory. Its span id is the run's or
    the attempt's derived span (see :mod:`ledgerflow.common.telemetry`).
    """
    traceparent: str = telemetry.envelope_traceparent(envelope)
    return traceparent


def _headers(envelope: Envelope, traceparent: str | None) -> list[tuple[str, bytes]]:
    if traceparent is None:  # the active span's (tracing on), else derived
        traceparent = telemetry.current_traceparent() or derived_traceparent(envelope)
    return [
        ("traceparent", traceparent.encode()),
        ("content-type", CONTENT_TYPE.encode()),
        ("ce_type", envelope.type.encode()),
        ("ce_id", envelope.id.encode()),
    ]


def traceparent_of(record: Any) -> str | None:
    """The ``traceparent`` header of a consumed record, if any."""
    for k, v in record.headers or ():
        if k == "traceparent" and v:
            return bytes(v).decode(errors="replace")
    return None


def decode_record(record: Any) -> Envelope:
    """Decode a consumed record's value. Raises :class:`MalformedMessage`."""
    return decode(record.value)


class EventProducer:
    """Produces envelopes. ``async with EventProducer(settings, source=...) as p``.

    ``start``/``stop`` are idempotent. ``send`` waits for the broker's ack (acks=all);
    ``send_soon`` enqueues and returns the delivery future so callers can batch.
    """

    def __init__(self, settings: Settings, *, source: str, client_id: str | None = None) -> None:
        self._settings = settings
        self.source = source
        self._client_id = client_id or source.replace("/", "-")
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        if self._producer is not None:
            return
        producer = AIOKafkaProducer(
            **kafka_client_kwargs(self._settings),
            client_id=self._client_id,
            acks="all",
            linger_ms=0,
            max_request_size=8 * 1024 * 1024,
        )
        await producer.start()
        self._producer = producer

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def __aenter__(self) -> EventProducer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def raw(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("EventProducer is not started")
        return self._producer

    async def send_soon(
        self,
        topic: str,
        envelope: Envelope,
        *,
        key: str | None = None,
        traceparent: str | None = None,
        partition: int | None = None,
    ) -> asyncio.Future[Any]:
        """Enqueue a message now; await the returned future for the broker's ack.
        ``partition``: an explicit partition (default: the key's hash)."""
        fut: asyncio.Future[Any] = await self.raw.send(
            topic,
            value=encode(envelope),
            key=(key if key is not None else envelope.aggregate_key).encode(),
            headers=_headers(envelope, traceparent),
            partition=partition,
        )
        return fut

    async def send(
        self,
        topic: str,
        envelope: Envelope,
        *,
        key: str | None = None,
        traceparent: str | None = None,
    ) -> Any:
        """Send and wait for the broker's ack; returns aiokafka's RecordMetadata."""
        fut = await self.send_soon(topic, envelope, key=key, traceparent=traceparent)
        return await fut

    async def flush(self) -> None:
        await self.raw.flush()

    async def dead_letter(self, record: Any, reason: str, *, consumer: str) -> None:
        """Set a message aside on the dead-letter topic, byte for byte, with the reason.

        The consumer then goes on; nothing is lost, and the DLQ can be inspected or
        replayed by hand.
        """
        headers = list(record.headers or ())
        headers += [
            (DLQ_HEADER_PREFIX + "topic", str(record.topic).encode()),
            (DLQ_HEADER_PREFIX + "partition", str(record.partition).encode()),
            (DLQ_HEADER_PREFIX + "offset", str(record.offset).encode()),
            (DLQ_HEADER_PREFIX + "consumer", consumer.encode()),
            (DLQ_HEADER_PREFIX + "reason", reason[:4000].encode(errors="replace")),
        ]
        fut = await self.raw.send(
            self._settings.topics.dead_letters,
            value=record.value,
            key=record.key,
            headers=headers,
        )
        await fut
        metrics.dead_lettered(consumer, str(record.topic))
        log.warning(
            "dead-lettered %s[%s]@%s: %s", record.topic, record.partition, record.offset, reason
        )


__all__ = [
    "EventProducer",
    "MalformedMessage",
    "background_consumer_config",
    "consumer_config",
    "decode_record",
    "derived_traceparent",
    "ensure_topics",
    "kafka_client_kwargs",
    "traceparent_of",
]
