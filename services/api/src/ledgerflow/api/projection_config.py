"""Projection handlers for the config topic: variables and connections (ADR 0006).

Kept apart from :mod:`ledgerflow.api.projection` (which registers them) because config
facts share nothing with runs. The config topic has one partition, so its events are
applied in one order: the last ``...Set`` or ``...Deleted`` of a key wins, on replay too.
Ciphertext is stored as it came; this module never sees a key.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from ledgerflow.common import events as ev

_UPSERT_VARIABLE = """
INSERT INTO variables (key, val, is_encrypted, description, is_secret, updated_at, updated_by)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (key) DO UPDATE SET
    val = EXCLUDED.val, is_encrypted = EXCLUDED.is_encrypted,
    description = EXCLUDED.description, is_secret = EXCLUDED.is_secret,
    updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by
"""

_UPSERT_CONNECTION = """
INSERT INTO connections (conn_id, conn_type, description, host, conn_schema, login, password,
                         port, extra, updated_at, updated_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (conn_id) DO UPDATE SET
    conn_type = EXCLUDED.conn_type, description = EXCLUDED.description,
    host = EXCLUDED.host, conn_schema = EXCLUDED.conn_schema, login = EXCLUDED.login,
    password = EXCLUDED.password, port = EXCLUDED.port, extra = EXCLUDED.extra,
    updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by
"""


async def variable_set(conn: asyncpg.Connection, env: ev.Envelope) -> None:
    p = env.data
    assert isinstance(p, ev.VariableSet)
    await conn.execute(
        _UPSERT_VARIABLE,
        p.key,
        p.value,
        p.is_encrypted,
        p.description,
        p.is_secret,
        env.time,
        p.set_by,
    )


async def variable_deleted(conn: asyncpg.Connection, env: ev.Envelope) -> None:
    p = env.data
    assert isinstance(p, ev.VariableDeleted)
    await conn.execute("DELETE FROM variables WHERE key = $1", p.key)


async def connection_set(conn: asyncpg.Connection, env: ev.Envelope) -> None:
    p = env.data
    assert isinstance(p, ev.ConnectionSet)
    await conn.execute(
        _UPSERT_CONNECTION,
        p.conn_id,
        p.conn_type,
        p.description,
        p.host,
        p.schema_,
        p.login,
        p.password,
        p.port,
        p.extra,
        env.time,
        p.set_by,
    )


async def connection_deleted(conn: asyncpg.Connection, env: ev.Envelope) -> None:
    p = env.data
    assert isinstance(p, ev.ConnectionDeleted)
    await conn.execute("DELETE FROM connections WHERE conn_id = $1", p.conn_id)


CONFIG_HANDLERS: dict[type[Any], Callable[[asyncpg.Connection, Any], Awaitable[None]]] = {
    ev.VariableSet: variable_set,
    ev.VariableDeleted: variable_deleted,
    ev.ConnectionSet: connection_set,
    ev.ConnectionDeleted: connection_deleted,
}
"""Registered in :data:`ledgerflow.api.projection._HANDLERS`."""
