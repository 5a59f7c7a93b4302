"""Who is alive: service instances heartbeat to ``<prefix>.heartbeats``; readers list
the instances heard from recently.

Schedulers, executors and projectors run :func:`beat` in the background. The API's
``/health`` calls :func:`alive` (a group-less read of the last few intervals of the one
partition), which the UI's health indicator shows. Nothing is derived from heartbeats
but "who is alive now": the topic keeps one day and is not an event topic.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]
from ledgerflow.common.events import (
    MalformedMessage,
    ServiceHeartbeat,
    decode,
    make_envelope,
)
from ledgerflow.common.kafka_io import EventProducer, consumer_config
from ledgerflow.common.settings import Settings

log = logging.getLogger(__name__)

# An instance counts as alive while its last heartbeat is younger than this many
# intervals (one missed beat is tolerated).
ALIVE_INTERVALS = 2.5


def instance_id(service: str) -> str:
    """``<service>-<host>-<pid>-<random>``: unique per process start."""
    return f"{service}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


async def beat(
    settings: Settings,
    producer: EventProducer,
    *,
    service: str,
    instance: str,
    details: Callable[[], dict[str, Any]] | None = None,
) -> None:
    """Send a :class:`ServiceHeartbeat` now and every interval until cancelled. A failed
    send is logged and retried at the next interval (liveness must not kill a service)."""
    interval = settings.service_heartbeat_seconds
    started = datetime.now(UTC)
    pid = os.getpid()
    host = socket.gethostname()
    beats = 0
    while True:
        now = datetime.now(UTC)
        data = ServiceHeartbeat(
            service=service,  # type: ignore[arg-type]
            instance_id=instance,
            hostname=host,
            pid=pid,
            started_at=started,
            at=now,
            interval_seconds=interval,
            details=details() if details is not None else {},
        )
        env = make_envelope(
            data,
            id=f"{instance}-{beats}",
            source=producer.source,
            time=now,
            aggregate_key=instance,
        )
        try:
            await producer.send(settings.topics.heartbeats, env)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the broker may be restarting: try again later
            log.warning("could not send a service heartbeat: %r", exc)
        beats += 1
        await asyncio.sleep(interval)


def start_beating(
    settings: Settings,
    producer: EventProducer,
    *,
    service: str,
    instance: str,
    details: Callable[[], dict[str, Any]] | None = None,
) -> asyncio.Task[None]:
    """:func:`beat` as a background task (cancel it on shutdown)."""
    return asyncio.get_running_loop().create_task(
        beat(settings, producer, service=service, instance=instance, details=details),
        name=f"heartbeat-{service}",
    )


async def alive(
    settings: Settings, *, now: datetime | None = None, timeout_s: float = 3.0
) -> dict[str, list[dict[str, Any]]]:
    """The instances heard from recently, by service: ``{"scheduler": [...], ...}``,
    each ``{instance_id, hostname, pid, started_at, last_seen, details}``."""
    now = now or datetime.now(UTC)
    window = timedelta(seconds=settings.service_heartbeat_seconds * ALIVE_INTERVALS)
    config = consumer_config(settings)
    config.update(group_id=None, enable_auto_commit=False, client_id="ledgerflow-liveness")
    consumer = AIOKafkaConsumer(**config)
    await consumer.start()
    latest: dict[str, ServiceHeartbeat] = {}
    try:
        tp = TopicPartition(settings.topics.heartbeats, 0)
        consumer.assign([tp])
        since = int((now - window).timestamp() * 1000)
        found = await consumer.offsets_for_times({tp: since})
        end = (await consumer.end_offsets([tp]))[tp]
        start = found[tp].offset if found.get(tp) is not None else end
        consumer.seek(tp, start)
        async with asyncio.timeout(timeout_s):
            while start < end and await consumer.position(tp) < end:
                batch = await consumer.getmany(tp, timeout_ms=200)
                for record in batch.get(tp, []):
                    try:
                        env = decode(record.value)
                    except MalformedMessage:
                        continue
                    if isinstance(env.data, ServiceHeartbeat):
                        latest[env.data.instance_id] = env.data
    finally:
        await consumer.stop()
    out: dict[str, list[dict[str, Any]]] = {"scheduler": [], "executor": [], "projector": []}
    for hb in sorted(latest.values(), key=lambda h: (h.service, h.instance_id)):
        if now - hb.at > timedelta(seconds=hb.interval_seconds * ALIVE_INTERVALS):
            continue  # stopped beating (or stopped cleanly) since
        out.setdefault(hb.service, []).append(
            {
                "instance_id": hb.instance_id,
                "hostname": hb.hostname,
                "pid": hb.pid,
                "started_at": hb.started_at.isoformat(),
                "last_seen": hb.at.isoformat(),
                "details": hb.details,
            }
        )
    return out


__all__ = ["alive", "beat", "instance_id", "start_beating", "ALIVE_INTERVALS"]
