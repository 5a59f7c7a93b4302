"""Variables and connections: reads from the projection and writes to the config topic.

Reads return the stored rows (secrets still ciphertext). Writes encrypt nothing
themselves: they take ciphertext, wrap it in a config fact and publish it, returning
where it landed. The projection follows from the topic (ADR 0006).

Event ids come from the request id (``X-Request-ID`` / ``Idempotency-Key`` when the
client sends one, else a random one), the key and the write's index within the
request, so a client that retries a request with the same id writes no second fact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from fastapi import HTTPException, status
from ledgerflow.common import events as ev

SOURCE = "ledgerflow/api"


# --------------------------------------------------------------------------- reads
@dataclass(frozen=True)
class StoredVariable:
    key: str
    val: str  # ciphertext
    is_encrypted: bool
    description: str | None
    is_secret: bool


@dataclass(frozen=True)
class StoredConnection:
    conn_id: str
    conn_type: str
    description: str | None
    host: str | None
    schema: str | None
    login: str | None
    password: str | None  # ciphertext
    port: int | None
    extra: str | None  # ciphertext


VARIABLE_ORDERINGS = {
    "key": "key",
    "id": "key",
    "_val": "val",
    "description": "description",
    "is_encrypted": "is_encrypted",
}
CONNECTION_ORDERINGS = {
    "conn_id": "conn_id",
    "connection_id": "conn_id",
    "id": "conn_id",
    "conn_type": "conn_type",
    "description": "description",
    "host": "host",
    "port": "port",
}


def order_clause(order_by: Sequence[str], allowed: dict[str, str], tiebreak: str) -> str:
    """SQL ``ORDER BY`` terms for Airflow's ``order_by`` (``name`` or ``-name``, several
    allowed); 400 with Airflow's message for a name it does not allow."""
    terms: list[str] = []
    for item in order_by:
        name = item.removeprefix("-")
        column = allowed.get(name)
        if column is None:
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST,
                f"Ordering with '{name}' is disallowed or the attribute does not exist on "
                f"the model",
            )
        terms.append(
            f"{column} DESC NULLS LAST" if item.startswith("-") else f"{column} NULLS FIRST"
        )
    terms.append(tiebreak)
    return ", ".join(terms)


def _like_pattern(pattern: str | None) -> str | None:
    # Airflow's *_pattern parameters are case-insensitive substring matches (SQL LIKE
    # wildcards work inside them).
    return f"%{pattern}%" if pattern else None


def _variable(row: asyncpg.Record) -> StoredVariable:
    return StoredVariable(
        key=row["key"],
        val=row["val"],
        is_encrypted=row["is_encrypted"],
        description=row["description"],
        is_secret=row["is_secret"],
    )


def _connection(row: asyncpg.Record) -> StoredConnection:
    return StoredConnection(
        conn_id=row["conn_id"],
        conn_type=row["conn_type"],
        description=row["description"],
        host=row["host"],
        schema=row["conn_schema"],
        login=row["login"],
        password=row["password"],
        port=row["port"],
        extra=row["extra"],
    )


async def get_variable(conn: asyncpg.Connection, key: str) -> StoredVariable | None:
    row = await conn.fetchrow("SELECT * FROM variables WHERE key = $1", key)
    return None if row is None else _variable(row)


async def list_variables(
    conn: asyncpg.Connection,
    *,
    limit: int,
    offset: int,
    order_by: Sequence[str],
    key_pattern: str | None,
) -> tuple[list[StoredVariable], int]:
    order = order_clause(order_by, VARIABLE_ORDERINGS, "key")
    pattern = _like_pattern(key_pattern)
    where = "WHERE ($1::text IS NULL OR key ILIKE $1)"
    total = await conn.fetchval(f"SELECT count(*) FROM variables {where}", pattern)
    rows = await conn.fetch(
        f"SELECT * FROM variables {where} ORDER BY {order} LIMIT $2 OFFSET $3",
        pattern,
        limit,
        offset,
    )
    return [_variable(r) for r in rows], int(total)


async def existing_variable_keys(conn: asyncpg.Connection, keys: Sequence[str]) -> set[str]:
    rows = await conn.fetch("SELECT key FROM variables WHERE key = ANY($1::text[])", list(keys))
    return {r["key"] for r in rows}


async def get_connection(conn: asyncpg.Connection, conn_id: str) -> StoredConnection | None:
    row = await conn.fetchrow("SELECT * FROM connections WHERE conn_id = $1", conn_id)
    return None if row is None else _connection(row)


async def list_connections(
    conn: asyncpg.Connection,
    *,
    limit: int,
    offset: int,
    order_by: Sequence[str],
    id_pattern: str | None,
) -> tuple[list[StoredConnection], int]:
    order = order_clause(order_by, CONNECTION_ORDERINGS, "conn_id")
    pattern = _like_pattern(id_pattern)
    where = "WHERE ($1::text IS NULL OR conn_id ILIKE $1)"
    total = await conn.fetchval(f"SELECT count(*) FROM connections {where}", pattern)
    rows = await conn.fetch(
        f"SELECT * FROM connections {where} ORDER BY {order} LIMIT $2 OFFSET $3",
        pattern,
        limit,
        offset,
    )
    return [_connection(r) for r in rows], int(total)


async def existing_connection_ids(conn: asyncpg.Connection, ids: Sequence[str]) -> set[str]:
    rows = await conn.fetch(
        "SELECT conn_id FROM connections WHERE conn_id = ANY($1::text[])", list(ids)
    )
    return {r["conn_id"] for r in rows}


# --------------------------------------------------------------------------- writes
@dataclass(frozen=True)
class Written:
    """Where a config fact landed: its event id and ``topic:partition:offset``."""

    event_id: str
    position: str


class ConfigPublisher:
    """Publishes the config facts of one request, numbering them for their ids."""

    def __init__(self, producer: Any, topic: str, *, user: str, request_id: str) -> None:
        self._producer = producer
        self._topic = topic
        self.user = user
        self.request_id = request_id
        self._count = 0
        self.written: list[Written] = []

    async def publish(self, data: ev.ConfigEvent, aggregate_key: str) -> Written:
        index = self._count
        self._count += 1
        envelope = ev.make_envelope(
            data,
            id=ev.deterministic_id(data.type, aggregate_key, self.request_id, index),
            source=SOURCE,
            time=datetime.now(UTC),
            aggregate_key=aggregate_key,
            correlation_id=self.request_id,
        )
        meta = await self._producer.send(self._topic, envelope)
        written = Written(
            event_id=envelope.id,
            position=f"{getattr(meta, 'topic', self._topic)}:{getattr(meta, 'partition', 0)}:"
            f"{getattr(meta, 'offset', -1)}",
        )
        self.written.append(written)
        return written

    async def variable_set(
        self, key: str, ciphertext: str, *, description: str | None, is_secret: bool
    ) -> Written:
        data = ev.VariableSet(
            key=key,
            value=ciphertext,
            is_encrypted=True,
            description=description,
            is_secret=is_secret,
            set_by=self.user,
        )
        return await self.publish(data, f"variable:{key}")

    async def variable_deleted(self, key: str) -> Written:
        return await self.publish(
            ev.VariableDeleted(key=key, deleted_by=self.user), f"variable:{key}"
        )

    async def connection_set(self, stored: StoredConnection) -> Written:
        """Publish ``stored`` (password and extra already ciphertext) as the connection."""
        data = ev.ConnectionSet(
            conn_id=stored.conn_id,
            conn_type=stored.conn_type,
            description=stored.description,
            host=stored.host,
            schema=stored.schema,
            login=stored.login,
            password=stored.password,
            port=stored.port,
            extra=stored.extra,
            set_by=self.user,
        )
        return await self.publish(data, f"connection:{stored.conn_id}")

    async def connection_deleted(self, conn_id: str) -> Written:
        return await self.publish(
            ev.ConnectionDeleted(conn_id=conn_id, deleted_by=self.user),
            f"connection:{conn_id}",
        )
