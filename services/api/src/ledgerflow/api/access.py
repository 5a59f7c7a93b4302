"""Turning credentials into a :class:`~ledgerflow.api.auth.Principal`, per API process.

- Logins: the projection's user (argon2 verify) or the bootstrap admin, behind the
  :class:`~ledgerflow.api.login_throttle.LoginThrottle`.
- Tokens: the JWT names the user; the user's *current* role and ``active`` flag come from
  the projection (cached for ``user_ttl_s``), so demoting, deactivating or deleting a user
  takes effect within seconds, not when the token expires. A task token (executor-minted,
  ``kind: "task"``) is a read-only viewer named ``task:...``, with no user behind it.
- API keys: the argon2 check is slow on purpose, so a verified key is remembered for
  ``key_ttl_s`` (by a SHA-256 of its secret, in memory only); revoking a key through this
  process forgets it at once, through another process within ``key_ttl_s``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
from ledgerflow.api import users_store
from ledgerflow.api.auth import (
    Authenticator,
    InvalidToken,
    Principal,
    parse_api_key,
    verify_secret,
)
from ledgerflow.api.login_throttle import LoginThrottle
from ledgerflow.api.users_store import Db, StoredUser

# The projection may not exist yet (no projector has run): no users then, only the
# bootstrap admin.
_NO_PROJECTION = (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError)


class TooManyAttempts(Exception):
    """Logins for this username or address are locked out for ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; retry in {retry_after}s")
        self.retry_after = retry_after


@dataclass
class _CachedKey:
    digest: bytes
    principal: Principal
    expires_at: datetime | None
    until: float


@dataclass
class AccessControl:
    """Authentication state of one API process (caches and login throttle)."""

    auth: Authenticator
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    user_ttl_s: float = 5.0
    key_ttl_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    _users: dict[str, tuple[StoredUser | None, float]] = field(default_factory=dict)
    _keys: dict[str, _CachedKey] = field(default_factory=dict)
    _revoked_here: set[str] = field(default_factory=set)

    # ------------------------------------------------------------------ logins
    async def login(self, db: Db, username: str, password: str, *, client: str | None) -> str:
        """A token for these credentials. Raises :class:`TooManyAttempts` while locked
        out, :class:`InvalidToken` for wrong credentials."""
        keys = [("user", username)] + ([("ip", client)] if client else [])
        wait = self.throttle.retry_after(keys)
        if wait is not None:
            raise TooManyAttempts(wait)
        principal = await self._check_password(db, username, password)
        if principal is None:
            self.throttle.failed(keys)
            raise InvalidToken("Invalid username or password")
        self.throttle.succeeded(("user", username))
        return self.auth.issue(principal.name, principal.role)

    async def _check_password(self, db: Db, username: str, password: str) -> Principal | None:
        if self.auth.is_bootstrap(username):
            # The API refuses to create a user under this name, so there is no other.
            ok = self.auth.check_password(username, password)
            return Principal(username, "admin", "bootstrap") if ok else None
        try:
            user = await users_store.get_user(db, username)
        except _NO_PROJECTION:
            user = None
        hashed = user.password_hash if user is not None and user.active else None
        if not await asyncio.to_thread(verify_secret, hashed, password):
            return None
        assert user is not None
        self._users[username] = (user, self.clock() + self.user_ttl_s)
        return Principal(user.username, user.role)

    # ------------------------------------------------------------------ tokens
    async def principal_for_token(self, db: Db, token: str) -> Principal:
        claims = self.auth.verify(token)
        if claims.kind == "task":
            # An executor's token for one attempt: a read-only viewer, not a user (there
            # is nothing in the projection to look up; it expires with the attempt).
            return Principal(claims.username, "viewer", "task")
        if self.auth.is_bootstrap(claims.username):
            return Principal(claims.username, "admin", "bootstrap")
        user = await self._user(db, claims.username)
        if user is None or not user.active:
            raise InvalidToken(f"user {claims.username!r} does not exist or is not active")
        return Principal(user.username, user.role)

    async def _user(self, db: Db, username: str) -> StoredUser | None:
        now = self.clock()
        cached = self._users.get(username)
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            user = await users_store.get_user(db, username)
        except _NO_PROJECTION:
            user = None
        self._users[username] = (user, now + self.user_ttl_s)
        return user

    def forget_user(self, username: str) -> None:
        self._users.pop(username, None)

    # ------------------------------------------------------------------ API keys
    async def principal_for_api_key(self, db: Db, key: str) -> Principal:
        parsed = parse_api_key(key)
        if parsed is None:
            raise InvalidToken("not a ledgerflow API key (lfk_<id>_<secret>)")
        key_id, secret = parsed
        if key_id in self._revoked_here:
            raise InvalidToken("unknown or revoked API key")
        digest = hashlib.sha256(secret.encode()).digest()
        now = self.clock()
        cached = self._keys.get(key_id)
        if cached is not None and cached.until > now and hmac.compare_digest(cached.digest, digest):
            if cached.expires_at is not None and cached.expires_at <= datetime.now(UTC):
                raise InvalidToken("API key has expired")
            return cached.principal
        try:
            stored = await users_store.get_api_key(db, key_id)
        except _NO_PROJECTION:
            stored = None
        if stored is None or stored.revoked_at is not None:
            raise InvalidToken("unknown or revoked API key")
        if stored.expires_at is not None and stored.expires_at <= datetime.now(UTC):
            raise InvalidToken("API key has expired")
        if not await asyncio.to_thread(verify_secret, stored.secret_hash, secret):
            raise InvalidToken("unknown or revoked API key")
        principal = Principal(f"apikey:{stored.name}", stored.role, "apikey")
        self._keys[key_id] = _CachedKey(digest, principal, stored.expires_at, now + self.key_ttl_s)
        return principal

    def revoked(self, key_id: str) -> None:
        """This process revoked the key: refuse it now, before the projection knows."""
        self._keys.pop(key_id, None)
        self._revoked_here.add(key_id)
