"""Readiness checks for the probe server, built from outside the services.

The services expose no "I am ready" hook, so readiness is read from where the service
leaves its mark:

- scheduler and executor: this process is a member of its consumer group. Kafka's
  DescribeGroups lists each member's ``client_id``, and both services put the host name
  and process id in theirs (in a container the host name is the pod or container name).
- projector: the projection is caught up with the log, exactly as the API's ``/health``
  judges it (``LEDGERFLOW_HEALTH_MAX_PROJECTION_LAG``).

A positive answer is cached for a few seconds so a probe every few seconds costs at
most one small Kafka request.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from typing import Any, Protocol

from aiokafka.admin import AIOKafkaAdminClient
from ledgerflow.common.kafka_io import kafka_client_kwargs
from ledgerflow.common.probes import Readiness
from ledgerflow.common.settings import Settings

log = logging.getLogger(__name__)


class ClosableCheck(Protocol):
    """A readiness check that holds clients and is closed when the service stops."""

    async def __call__(self) -> Readiness: ...

    async def aclose(self) -> None: ...


def is_member(client_id: str, hostname: str, pid: int) -> bool:
    """Whether a group member's ``client_id`` names this host and process: the pid follows
    the host name after one separator (``scheduler-<host>-<pid>``,
    ``<host>:<pid>:<queue>:<uuid>``)."""
    if not hostname:
        return False
    return re.search(rf"{re.escape(hostname)}[-:_.]{pid}(?![0-9])", client_id) is not None


class GroupMembership:
    """Ready while this process is a member of consumer group ``group``."""

    def __init__(
        self,
        settings: Settings,
        group: str,
        *,
        hostname: str | None = None,
        pid: int | None = None,
        cache_seconds: float = 5.0,
    ) -> None:
        self._settings = settings
        self.group = group
        self.hostname = hostname or socket.gethostname()
        self.pid = pid if pid is not None else os.getpid()
        self._cache_seconds = cache_seconds
        self._ready_until = 0.0
        self._admin: AIOKafkaAdminClient | None = None

    async def __call__(self) -> Readiness:
        if time.monotonic() < self._ready_until:
            return Readiness(True)
        try:
            members = await self._members()
        except Exception as exc:  # any failure: not ready, fresh client next time
            await self.aclose()
            return Readiness(False, f"cannot describe consumer group {self.group}: {exc!r}")
        if any(is_member(m, self.hostname, self.pid) for m in members):
            self._ready_until = time.monotonic() + self._cache_seconds
            return Readiness(True)
        return Readiness(
            False,
            f"not (yet) a member of consumer group {self.group} ({len(members)} other members)",
        )

    async def _members(self) -> list[str]:
        if self._admin is None:
            admin = AIOKafkaAdminClient(
                **kafka_client_kwargs(self._settings), client_id="ledgerflow-readiness"
            )
            await admin.start()
            self._admin = admin
        responses: list[Any] = await self._admin.describe_consumer_groups([self.group])
        client_ids: list[str] = []
        for response in responses:
            for group in response.to_object().get("groups", []):
                if group.get("group") == self.group:
                    client_ids += [str(m.get("client_id", "")) for m in group.get("members", [])]
        return client_ids

    async def aclose(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            try:
                await admin.close()
            except Exception as exc:  # closing a broken client may fail; nothing to do
                log.debug("readiness admin client close failed: %r", exc)


class ProjectionCaughtUp:
    """Ready when the projection is within the allowed lag of the log (the API's test).

    Imports the API package lazily: the CLI is the one place that knows every service.
    """

    def __init__(self, settings: Settings) -> None:
        from ledgerflow.api.health import HealthProbe

        self._settings = settings
        self._probe = HealthProbe(settings)
        self._pool: Any = None

    async def __call__(self) -> Readiness:
        from ledgerflow.api import db

        if self._pool is None:
            self._pool = await db.create_pool(
                self._settings.database_url, schema=db.LIVE_SCHEMA, min_size=1, max_size=1
            )
        report = await self._probe.check(self._pool)
        if report.status == "healthy":
            return Readiness(True)
        return Readiness(False, "; ".join(report.reasons))

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        await self._probe.stop()
        if pool is not None:
            await pool.close()


__all__ = ["ClosableCheck", "GroupMembership", "ProjectionCaughtUp", "is_member"]
