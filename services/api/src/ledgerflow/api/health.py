"""Can the system take work? Kafka reachable and the projection caught up with the log."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from ledgerflow.api import queries
from ledgerflow.api.schemas import HealthResponse
from ledgerflow.api.topology import partitions_of
from ledgerflow.common import liveness
from ledgerflow.common.kafka_io import consumer_config, kafka_client_kwargs
from ledgerflow.common.settings import Settings

log = logging.getLogger(__name__)

KAFKA_TIMEOUT_S = 5.0
ALIVE_CACHE_S = 1.0


class HealthProbe:
    """Compares the projector's stored offsets with the event topics' end offsets.

    Holds one admin client and one group-less consumer (for ``end_offsets``), started
    lazily so that the API can start, and report unhealthy, while Kafka is down.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()
        self._alive: tuple[float, dict[str, list[dict[str, Any]]]] | None = None

    async def stop(self) -> None:
        admin, self._admin = self._admin, None
        consumer, self._consumer = self._consumer, None
        if admin is not None:
            await admin.close()
        if consumer is not None:
            await consumer.stop()

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None:
            admin = AIOKafkaAdminClient(**kafka_client_kwargs(self._settings))
            await admin.start()
            self._admin = admin
        if self._consumer is None:
            config = consumer_config(self._settings)
            config.update(
                group_id=None, isolation_level="read_committed", client_id="ledgerflow-api-health"
            )
            consumer = AIOKafkaConsumer(**config)
            await consumer.start()
            self._consumer = consumer
        return self._admin, self._consumer

    async def end_offsets(self) -> dict[tuple[str, int], int]:
        async with self._lock, asyncio.timeout(KAFKA_TIMEOUT_S):
            admin, consumer = await self._clients()
            tps = await partitions_of(admin, self._settings.topics.event_topics)
            ends = await consumer.end_offsets(tps)
        return {(tp.topic, tp.partition): off for tp, off in ends.items()}

    async def check(self, pool: asyncpg.Pool) -> HealthResponse:
        reasons: list[str] = []
        kafka: dict[str, Any] = {"status": "healthy"}
        projection: dict[str, Any] = {"status": "healthy"}
        ends: dict[tuple[str, int], int] | None = None
        try:
            ends = await self.end_offsets()
        except Exception as exc:  # any failure here means "cannot reach Kafka"
            log.warning("health: kafka check failed: %r", exc)
            await self.stop()  # start afresh next time
            kafka = {"status": "unhealthy", "error": repr(exc)}
            reasons.append(f"Kafka is not reachable at {self._settings.kafka_bootstrap}: {exc!r}")

        stored: dict[tuple[str, int], int] | None = None
        try:
            async with pool.acquire() as conn:
                stored = await queries.projector_offsets(conn)
                status = await queries.projector_status(conn)
            if status is not None:
                projection["last_update"] = status["updated_at"].isoformat(timespec="microseconds")
                projection["events_applied"] = status["events_applied"]
                projection["dead_lettered"] = status["dead_lettered"]
        except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
            projection = {"status": "unhealthy"}
            reasons.append("the projection does not exist yet (has the projector run?)")
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            projection = {"status": "unhealthy", "error": repr(exc)}
            reasons.append(f"Postgres is not reachable: {exc!r}")

        if ends is not None and stored is not None:
            lag = {
                f"{t}[{p}]": end - stored.get((t, p), 0)
                for (t, p), end in ends.items()
                if end > stored.get((t, p), 0)
            }
            total = sum(lag.values())
            projection["lag"] = total
            limit = self._settings.health_max_projection_lag
            if total > limit:
                projection["status"] = "unhealthy"
                projection["lag_by_partition"] = lag
                reasons.append(
                    f"the projection is {total} events behind the log (allowed: {limit})"
                )
        members: dict[str, list[dict[str, Any]]] = {}
        if kafka["status"] == "healthy":
            members = await self.alive()
        return HealthResponse(
            status="unhealthy" if reasons else "healthy",
            reasons=reasons,
            kafka=kafka,
            projection=projection,
            schedulers=members.get("scheduler", []),
            executors=members.get("executor", []),
            projectors=members.get("projector", []),
        )

    async def alive(self) -> dict[str, list[dict[str, Any]]]:
        """Who sent a heartbeat recently (cached for a second: probes may poll often)."""
        now = time.monotonic()
        if self._alive is not None and now - self._alive[0] < ALIVE_CACHE_S:
            return self._alive[1]
        try:
            members = await liveness.alive(self._settings, timeout_s=KAFKA_TIMEOUT_S)
        except Exception as exc:  # informational only: never fail the health check
            log.warning("health: could not read the heartbeats topic: %r", exc)
            return {}
        self._alive = (now, members)
        return members
