"""Users and API keys: reads from the projection, and the facts the API publishes.

Reads take a connection or the pool (authentication reads straight from the pool, so a
request does not hold a connection for it). Writes go through the config publisher of
the request (:class:`ledgerflow.api.config_store.ConfigPublisher`), keyed
``user:<username>`` / ``apikey:<key_id>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg
from ledgerflow.api.config_store import ConfigPublisher, Written, order_clause
from ledgerflow.common import events as ev

Db: TypeAlias = asyncpg.Connection | asyncpg.Pool


@dataclass(frozen=True)
class StoredUser:
    username: str
    role: ev.Role
    password_hash: str | None
    first_name: str | None
    last_name: str | None
    email: str | None
    active: bool
    created_at: datetime
    created_by: str | None
    changed_at: datetime
    changed_by: str | None


@dataclass(frozen=True)
class StoredApiKey:
    key_id: str
    name: str
    role: ev.Role
    secret_hash: str
    created_at: datetime
    created_by: str | None
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None


USER_ORDERINGS = {
    "username": "username",
    "id": "username",
    "role": "role",
    "email": "email",
    "first_name": "first_name",
    "last_name": "last_name",
    "created_on": "created_at",
    "changed_on": "changed_at",
}
API_KEY_ORDERINGS = {
    "key_id": "key_id",
    "name": "name",
    "role": "role",
    "created_at": "created_at",
    "expires_at": "expires_at",
}


def _user(row: asyncpg.Record) -> StoredUser:
    return StoredUser(**{f: row[f] for f in StoredUser.__dataclass_fields__})


def _api_key(row: asyncpg.Record) -> StoredApiKey:
    return StoredApiKey(**{f: row[f] for f in StoredApiKey.__dataclass_fields__})


async def get_user(db: Db, username: str) -> StoredUser | None:
    row = await db.fetchrow("SELECT * FROM users WHERE username = $1", username)
    return None if row is None else _user(row)


async def list_users(
    db: Db, *, limit: int, offset: int, order_by: Sequence[str]
) -> tuple[list[StoredUser], int]:
    order = order_clause(order_by, USER_ORDERINGS, "username")
    total = await db.fetchval("SELECT count(*) FROM users")
    rows = await db.fetch(f"SELECT * FROM users ORDER BY {order} LIMIT $1 OFFSET $2", limit, offset)
    return [_user(r) for r in rows], int(total)


async def get_api_key(db: Db, key_id: str) -> StoredApiKey | None:
    row = await db.fetchrow("SELECT * FROM api_keys WHERE key_id = $1", key_id)
    return None if row is None else _api_key(row)


async def list_api_keys(
    db: Db, *, limit: int, offset: int, order_by: Sequence[str], include_revoked: bool
) -> tuple[list[StoredApiKey], int]:
    order = order_clause(order_by, API_KEY_ORDERINGS, "key_id")
    where = "" if include_revoked else "WHERE revoked_at IS NULL"
    total = await db.fetchval(f"SELECT count(*) FROM api_keys {where}")
    rows = await db.fetch(
        f"SELECT * FROM api_keys {where} ORDER BY {order} LIMIT $1 OFFSET $2", limit, offset
    )
    return [_api_key(r) for r in rows], int(total)


async def active_api_key_named(db: Db, name: str) -> StoredApiKey | None:
    row = await db.fetchrow(
        "SELECT * FROM api_keys WHERE name = $1 AND revoked_at IS NULL LIMIT 1", name
    )
    return None if row is None else _api_key(row)


# --------------------------------------------------------------------------- writes
async def publish_user(
    publisher: ConfigPublisher, user: dict[str, Any], *, created: bool
) -> Written:
    """``UserCreated`` (``created``) or ``UserUpdated`` with the account's whole state."""
    fact = ev.UserCreated if created else ev.UserUpdated
    data = fact(**user, by=publisher.user)
    return await publisher.publish(data, f"user:{data.username}")


async def publish_user_deleted(publisher: ConfigPublisher, username: str) -> Written:
    return await publisher.publish(
        ev.UserDeleted(username=username, by=publisher.user), f"user:{username}"
    )


async def publish_api_key(
    publisher: ConfigPublisher,
    *,
    key_id: str,
    name: str,
    role: ev.Role,
    secret_hash: str,
    expires_at: datetime | None,
) -> Written:
    data = ev.ApiKeyCreated(
        key_id=key_id,
        name=name,
        role=role,
        secret_hash=secret_hash,
        created_by=publisher.user,
        expires_at=expires_at,
    )
    return await publisher.publish(data, f"apikey:{key_id}")


async def publish_api_key_revoked(publisher: ConfigPublisher, key_id: str) -> Written:
    return await publisher.publish(
        ev.ApiKeyRevoked(key_id=key_id, revoked_by=publisher.user), f"apikey:{key_id}"
    )
