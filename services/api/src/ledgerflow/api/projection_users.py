"""Projection handlers for users and API keys (config topic, one partition).

The last ``UserCreated``/``UserUpdated`` of a username is the account (each carries the
whole state); ``UserDeleted`` removes it. A revoked key keeps its row (``revoked_at``), so
the list of keys shows what was revoked and by whom. Row times are the events' times.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from ledgerflow.common import events as ev

_UPSERT_USER = """
INSERT INTO users AS u (username, role, password_hash, first_name, last_name, email, active,
                        created_at, created_by, changed_at, changed_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8, $9)
ON CONFLICT (username) DO UPDATE SET
    role = EXCLUDED.role, password_hash = EXCLUDED.password_hash,
    first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name,
    email = EXCLUDED.email, active = EXCLUDED.active,
    changed_at = EXCLUDED.changed_at, changed_by = EXCLUDED.changed_by
"""

_INSERT_API_KEY = """
INSERT INTO api_keys (key_id, name, role, secret_hash, created_at, created_by, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (key_id) DO NOTHING
"""


async def user_set(conn: asyncpg.Connection, env: ev.Envelope) -> None:
    p = env.data
    assert isinstance(p, ev.UserCreated | ev.UserUpdated)
    await conn.execute(
        _UPSERT_USER,
        p.username,
        p.role,
        p.password_hash,
        p.first_name,
        p.last_name,
        p.email,
        p.active,
        env.time,
        p.by,
    )


async def user_deleted(conn: asyncpg.Connection, env: ev.Envelope) -> None:
    p = env.data
    assert isinstance(p, ev.UserDeleted)
    await conn.execute("DELETE FROM users WHERE username = $1", p.username)


async def api_key_created(conn: asyncpg.Connection, env: ev.Envelope) -> None:
    p = env.data
    assert isinstance(p, ev.ApiKeyCreated)
    await conn.execute(
        _INSERT_API_KEY,
        p.key_id,
        p.name,
        p.role,
        p.secret_hash,
        env.time,
        p.created_by,
        p.expires_at,
    )


async def api_key_revoked(conn: asyncpg.Connection, env: ev.Envelope) -> None:
    p = env.data
    assert isinstance(p, ev.ApiKeyRevoked)
    await conn.execute(
        "UPDATE api_keys SET revoked_at = $2, revoked_by = $3"
        " WHERE key_id = $1 AND revoked_at IS NULL",
        p.key_id,
        env.time,
        p.revoked_by,
    )


USER_HANDLERS: dict[type[Any], Callable[[asyncpg.Connection, Any], Awaitable[None]]] = {
    ev.UserCreated: user_set,
    ev.UserUpdated: user_set,
    ev.UserDeleted: user_deleted,
    ev.ApiKeyCreated: api_key_created,
    ev.ApiKeyRevoked: api_key_revoked,
}
"""Registered in :data:`ledgerflow.api.projection._HANDLERS`."""
