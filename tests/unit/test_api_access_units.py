"""Access control without servers: roles, hashing, tokens, API keys, the login throttle,
and how ``deps.authorize`` / ``require`` decide (on a tiny app with a fake projection)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import jwt
import pytest
from fastapi import APIRouter, Depends, FastAPI
from ledgerflow.api.access import AccessControl, TooManyAttempts
from ledgerflow.api.auth import (
    ROLES,
    Authenticator,
    InvalidToken,
    hash_secret,
    make_api_key,
    parse_api_key,
    parse_role,
    role_allows,
    verify_secret,
)
from ledgerflow.api.deps import PUBLIC, CurrentUser, authorize, require, writes_require
from ledgerflow.api.login_throttle import LoginThrottle
from ledgerflow.api.users_schemas import UserBody

SECRET = "k" * 32


def authenticator(ttl: int = 3600) -> Authenticator:
    return Authenticator(username="admin", password="boot-pw", secret=SECRET, ttl_seconds=ttl)


# --------------------------------------------------------------------------- roles
def test_roles_are_ordered_viewer_user_op_admin() -> None:
    assert ROLES == ("viewer", "user", "op", "admin")
    for i, have in enumerate(ROLES):
        for j, need in enumerate(ROLES):
            assert role_allows(have, need) == (i >= j), (have, need)
    assert not role_allows("root", "viewer")


def test_roles_are_read_in_airflows_spelling_too() -> None:
    assert parse_role("Op") == "op" and parse_role(" ADMIN ") == "admin"
    with pytest.raises(ValueError, match="unknown role"):
        parse_role("superuser")
    body = UserBody.model_validate(
        {"username": "ada", "password": "long-enough", "roles": [{"name": "Viewer"}]}
    )
    assert body.role == "viewer"
    with pytest.raises(ValueError, match="exactly one role"):
        UserBody.model_validate(
            {
                "username": "ada",
                "password": "long-enough",
                "roles": [{"name": "Op"}, {"name": "User"}],
            }
        )


# --------------------------------------------------------------------------- hashing and keys
def test_secrets_are_hashed_with_argon2id() -> None:
    hashed = hash_secret("correct horse")
    assert hashed.startswith("$argon2id$") and "correct horse" not in hashed
    assert hashed != hash_secret("correct horse")  # salted
    assert verify_secret(hashed, "correct horse")
    assert not verify_secret(hashed, "wrong")
    assert not verify_secret(None, "anything")
    assert not verify_secret("not-a-hash", "anything")


def test_api_keys_have_an_id_and_a_secret() -> None:
    key_id, secret, key = make_api_key()
    assert key == f"lfk_{key_id}_{secret}" and len(secret) >= 40
    assert parse_api_key(key) == (key_id, secret)
    for bad in ("lfk_", "lfk_abc", "lfk__secret", "xyz_abc_def", "eyJhbGciOi"):
        assert parse_api_key(bad) is None


# --------------------------------------------------------------------------- tokens
def test_tokens_carry_subject_role_and_expiry() -> None:
    auth = authenticator()
    token = auth.issue("ada", "op", now=1_000_000)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims == {
        "sub": "ada",
        "role": "op",
        "iat": 1_000_000,
        "exp": 1_000_000 + 3600,
        "iss": "ledgerflow",
    }
    with pytest.raises(InvalidToken, match="expired"):
        auth.verify(token)
    fresh = auth.verify(auth.issue("ada", "op"))
    assert (fresh.username, fresh.role) == ("ada", "op")


def test_tokens_without_a_known_role_are_refused() -> None:
    auth = authenticator()
    now = int(time.time())
    base = {"sub": "ada", "iat": now, "exp": now + 60, "iss": "ledgerflow"}
    with pytest.raises(InvalidToken, match="role"):
        auth.verify(jwt.encode(base, SECRET, algorithm="HS256"))
    with pytest.raises(InvalidToken, match="unknown role"):
        auth.verify(jwt.encode({**base, "role": "root"}, SECRET, algorithm="HS256"))
    with pytest.raises(InvalidToken):
        auth.verify(jwt.encode({**base, "role": "admin"}, "x" * 32, algorithm="HS256"))


# --------------------------------------------------------------------------- throttle
@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failed_logins_lock_out_exponentially() -> None:
    clock = Clock()
    throttle = LoginThrottle(max_failures=3, window_s=60, base_delay_s=2, clock=clock)
    user = [("user", "ada"), ("ip", "10.0.0.1")]
    for _ in range(2):
        throttle.failed(user)
        assert throttle.retry_after(user) is None
    throttle.failed(user)  # the third failure locks for 2 s
    assert throttle.retry_after(user) == 2
    clock.now += 2
    assert throttle.retry_after(user) is None
    throttle.failed(user)  # the fourth: 4 s
    assert throttle.retry_after(user) == 4
    clock.now += 4
    throttle.failed(user)  # the fifth: 8 s
    assert throttle.retry_after(user) == 8
    # The address has a larger allowance: another user from it is not locked out.
    assert throttle.retry_after([("user", "bob"), ("ip", "10.0.0.1")]) is None
    # Success clears the user's failures (not the address's).
    clock.now += 8
    throttle.succeeded(("user", "ada"))
    throttle.failed(user)
    assert throttle.retry_after([("user", "ada")]) is None


def test_failures_outside_the_window_are_forgotten() -> None:
    clock = Clock()
    throttle = LoginThrottle(max_failures=2, window_s=10, clock=clock)
    throttle.failed([("user", "ada")])
    clock.now += 11
    throttle.failed([("user", "ada")])
    assert throttle.retry_after([("user", "ada")]) is None


def test_delays_are_capped() -> None:
    clock = Clock()
    throttle = LoginThrottle(
        max_failures=1, window_s=10_000, base_delay_s=1, max_delay_s=30, clock=clock
    )
    for _ in range(20):
        clock.now += 31  # each try after the lock has passed
        throttle.failed([("user", "ada")])
    assert throttle.retry_after([("user", "ada")]) == 30


# --------------------------------------------------------------------------- fake projection
@dataclass
class FakeProjection:
    """Answers ``users_store``'s two lookups from dicts, counting them."""

    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    lookups: int = 0

    async def fetchrow(self, sql: str, *args: Any) -> dict[str, Any] | None:
        self.lookups += 1
        table = self.users if "FROM users" in sql else self.keys
        return table.get(args[0])

    def add_user(self, username: str, role: str, password: str, active: bool = True) -> None:
        now = datetime.now(UTC)
        self.users[username] = dict(
            username=username,
            role=role,
            password_hash=hash_secret(password),
            first_name=None,
            last_name=None,
            email=None,
            active=active,
            created_at=now,
            created_by="admin",
            changed_at=now,
            changed_by="admin",
        )

    def add_key(self, name: str, role: str, expires_at: datetime | None = None) -> str:
        key_id, secret, key = make_api_key()
        self.keys[key_id] = dict(
            key_id=key_id,
            name=name,
            role=role,
            secret_hash=hash_secret(secret),
            created_at=datetime.now(UTC),
            created_by="admin",
            expires_at=expires_at,
            revoked_at=None,
            revoked_by=None,
        )
        return key


async def test_logins_check_the_projection_then_the_bootstrap_admin() -> None:
    db = FakeProjection()
    db.add_user("ada", "op", "ada-password")
    db.add_user("off", "admin", "off-password", active=False)
    access = AccessControl(authenticator())
    token = await access.login(db, "ada", "ada-password", client="1.2.3.4")  # type: ignore[arg-type]
    assert (await access.principal_for_token(db, token)).role == "op"  # type: ignore[arg-type]
    boot = await access.login(db, "admin", "boot-pw", client=None)  # type: ignore[arg-type]
    boot_principal = await access.principal_for_token(db, boot)  # type: ignore[arg-type]
    assert (boot_principal.role, boot_principal.kind) == ("admin", "bootstrap")
    for username, password in (("ada", "nope"), ("off", "off-password"), ("ghost", "x")):
        with pytest.raises(InvalidToken):
            await access.login(db, username, password, client="1.2.3.4")  # type: ignore[arg-type]


async def test_logins_are_throttled() -> None:
    db = FakeProjection()
    access = AccessControl(authenticator(), throttle=LoginThrottle(max_failures=2))
    for _ in range(2):
        with pytest.raises(InvalidToken):
            await access.login(db, "admin", "guess", client="9.9.9.9")  # type: ignore[arg-type]
    with pytest.raises(TooManyAttempts) as locked:
        await access.login(db, "admin", "boot-pw", client="9.9.9.9")  # type: ignore[arg-type]
    assert locked.value.retry_after >= 1


async def test_api_keys_are_verified_once_then_cached_until_revoked() -> None:
    db = FakeProjection()
    key = db.add_key("ci", "user")
    access = AccessControl(authenticator())
    principal = await access.principal_for_api_key(db, key)  # type: ignore[arg-type]
    assert (principal.name, principal.role, principal.kind) == ("apikey:ci", "user", "apikey")
    lookups = db.lookups
    assert await access.principal_for_api_key(db, key) == principal  # type: ignore[arg-type]
    assert db.lookups == lookups  # served from the cache
    with pytest.raises(InvalidToken):  # a wrong secret is not served from the cache
        await access.principal_for_api_key(db, key[:-2] + "zz")  # type: ignore[arg-type]
    key_id = parse_api_key(key)[0]  # type: ignore[index]
    access.revoked(key_id)
    with pytest.raises(InvalidToken, match="revoked"):
        await access.principal_for_api_key(db, key)  # type: ignore[arg-type]
    old = db.add_key("old", "op", expires_at=datetime.now(UTC) - timedelta(seconds=1))
    with pytest.raises(InvalidToken, match="expired"):
        await access.principal_for_api_key(db, old)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- authorize
def tiny_app(db: FakeProjection) -> FastAPI:
    """Routes that exercise each way of stating a requirement."""
    app = FastAPI()
    app.state.access = AccessControl(authenticator())
    app.state.ctx = SimpleNamespace(pool=db)
    api = APIRouter(prefix="/api", dependencies=[Depends(authorize)])
    ops = APIRouter(prefix="/ops", dependencies=[writes_require("op")])

    @api.get("/read")
    async def read(user: CurrentUser) -> str:
        return user

    @api.post("/write")
    async def write() -> None: ...

    @api.post("/search", dependencies=[require("viewer")])
    async def search() -> None: ...

    @api.delete("/thing", dependencies=[require("admin")])
    async def delete_thing() -> None: ...

    @api.get("/version", dependencies=[PUBLIC])
    async def version() -> str:
        return "1"

    @ops.get("")
    async def ops_read() -> None: ...

    @ops.put("")
    async def ops_write() -> None: ...

    api.include_router(ops)
    app.include_router(api)
    return app


async def test_authorize_applies_defaults_and_stated_requirements() -> None:
    db = FakeProjection()
    auth = authenticator()
    for role in ROLES:
        db.add_user(role, role, "pw")
    expected = {
        ("GET", "/api/read"): "viewer",
        ("POST", "/api/write"): "user",
        ("POST", "/api/search"): "viewer",  # a stated requirement may be looser
        ("DELETE", "/api/thing"): "admin",
        ("GET", "/api/ops"): "viewer",
        ("PUT", "/api/ops"): "op",
    }
    transport = httpx.ASGITransport(app=tiny_app(db))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/api/version")).status_code == 200
        for (method, path), need in expected.items():
            assert (await client.request(method, path)).status_code == 401, (method, path)
            for role in ROLES:
                headers = {"Authorization": f"Bearer {auth.issue(role, role)}"}
                status = (await client.request(method, path, headers=headers)).status_code
                assert status == (200 if role_allows(role, need) else 403), (method, path, role)
        headers = {"Authorization": f"Bearer {auth.issue('user', 'user')}"}
        assert (await client.get("/api/read", headers=headers)).json() == "user"
        # The role comes from the projection, not from the token.
        db.users["user"]["role"] = "viewer"
        forged_role = {"Authorization": f"Bearer {auth.issue('viewer', 'admin')}"}
        assert (await client.delete("/api/thing", headers=forged_role)).status_code == 403
