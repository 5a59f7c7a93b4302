"""Who may call the API: roles, password and key hashing, bearer tokens.

- Roles are ordered ``viewer < user < op < admin`` (:func:`role_allows`); the table of
  which route needs which role lives with the routes (``require`` in ``deps``) and in
  ``docs/CONTRACTS-dev.md``.
- Passwords and API key secrets are stored as argon2id hashes (argon2-cffi's defaults,
  RFC 9106's low-memory profile); the hashes travel on the config topic as facts.
- Tokens are HS256 JWTs (``sub``, ``role``, ``iat``, ``exp``, ``iss``) signed with
  ``LEDGERFLOW_SECRET_KEY``. API keys look like ``lfk_<key_id>_<secret>``.
- Task tokens (``kind: "task"``, minted by executors with the same key:
  :mod:`ledgerflow.common.task_tokens`) name a task attempt, not a user: they are
  read-only viewers.
- The bootstrap admin (``LEDGERFLOW_ADMIN_USERNAME``/``LEDGERFLOW_ADMIN_PASSWORD``) is
  always an admin, even before the projection has any user.

Pure apart from the clock and argon2: no database, no FastAPI.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Literal, get_args

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from ledgerflow.common.events import ROLES, Role
from ledgerflow.common.settings import Settings
from ledgerflow.common.task_tokens import TASK_SUBJECT_PREFIX, TASK_TOKEN_KIND

__all__ = [
    "API_KEY_PREFIX",
    "ROLES",
    "Authenticator",
    "ConfigurationError",
    "InvalidToken",
    "Principal",
    "Role",
    "TokenClaims",
    "hash_secret",
    "make_api_key",
    "parse_api_key",
    "parse_role",
    "role_allows",
    "verify_secret",
]

API_KEY_PREFIX = "lfk_"

_RANK: dict[str, int] = {role: rank for rank, role in enumerate(ROLES)}
_HASHER = PasswordHasher()  # argon2id; stateless, so one per process is fine
# Verified against when a username is unknown, so a miss costs as much as a wrong password.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))


class ConfigurationError(RuntimeError):
    """The API cannot start with these settings. Not retryable: fix the configuration."""

    retryable = False


class InvalidToken(Exception):
    """A bearer token or API key that is missing, malformed, badly signed or expired."""


def role_allows(have: str, need: str) -> bool:
    """Whether a principal with role ``have`` may do what needs role ``need``."""
    return _RANK.get(have, -1) >= _RANK[need]


def parse_role(text: str) -> Role:
    """A role from its name in any case (``Op``, ``op``: Airflow capitalises them);
    ValueError for anything else."""
    name = text.strip().lower()
    for role in get_args(Role):
        if role == name:
            return role  # type: ignore[no-any-return]
    raise ValueError(f"unknown role {text!r}: one of {', '.join(ROLES)}")


# --------------------------------------------------------------------------- hashing
def hash_secret(secret: str) -> str:
    """An argon2id hash (PHC string) of a password or API key secret. CPU-heavy (tens of
    milliseconds): call it off the event loop."""
    return _HASHER.hash(secret)


def verify_secret(hashed: str | None, secret: str) -> bool:
    """Whether ``secret`` matches ``hashed``. A missing or unreadable hash still costs one
    verification, so the answer's timing does not say whether the account exists."""
    try:
        return _HASHER.verify(hashed or _DUMMY_HASH, secret) and hashed is not None
    except (VerificationError, InvalidHashError):
        return False


# --------------------------------------------------------------------------- API keys
def make_api_key() -> tuple[str, str, str]:
    """A new key: ``(key_id, secret, key)`` with ``key = lfk_<key_id>_<secret>``."""
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return key_id, secret, f"{API_KEY_PREFIX}{key_id}_{secret}"


def parse_api_key(key: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` of a key in ledgerflow's format, else None."""
    if not key.startswith(API_KEY_PREFIX):
        return None
    key_id, sep, secret = key[len(API_KEY_PREFIX) :].partition("_")
    if not sep or not key_id or not secret:
        return None
    return key_id, secret


# --------------------------------------------------------------------------- principals
@dataclass(frozen=True)
class Principal:
    """Who is calling. ``name`` is what audit fields record: the username,
    ``apikey:<name>`` for an API key, or ``task:<dag>/<run>/<task>/<map>/<try>`` for a
    task token (a read-only viewer: :attr:`read_only`)."""

    name: str
    role: Role
    kind: Literal["user", "apikey", "bootstrap", "task"] = "user"

    def allows(self, need: str) -> bool:
        return role_allows(self.role, need)

    @property
    def read_only(self) -> bool:
        """A task token may read, never write, whatever a route would let a viewer do."""
        return self.kind == "task"


@dataclass(frozen=True)
class TokenClaims:
    username: str
    role: Role
    issued_at: int
    expires_at: int
    # "user" for a login token, "task" for a task token (ledgerflow.common.task_tokens).
    kind: Literal["user", "task"] = "user"


@dataclass(frozen=True)
class Authenticator:
    """Issues and verifies tokens and knows the bootstrap admin. Built once per app."""

    username: str
    password: str
    secret: str
    ttl_seconds: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Authenticator:
        if settings.admin_password is None or not settings.admin_password.get_secret_value():
            raise ConfigurationError(
                "LEDGERFLOW_ADMIN_PASSWORD is not set: the API refuses to start without an "
                "admin password (set it, or use `ledgerflow standalone`, which generates one)"
            )
        secret = (
            settings.secret_key.get_secret_value()
            if settings.secret_key is not None
            else secrets.token_urlsafe(32)  # tokens then die with the process
        )
        return cls(
            username=settings.admin_username,
            password=settings.admin_password.get_secret_value(),
            secret=secret,
            ttl_seconds=settings.token_ttl_seconds,
        )

    def is_bootstrap(self, username: str) -> bool:
        return secrets.compare_digest(username.encode(), self.username.encode())

    def check_password(self, username: str, password: str) -> bool:
        """Whether these are the bootstrap admin's credentials."""
        password_ok = secrets.compare_digest(password.encode(), self.password.encode())
        return self.is_bootstrap(username) and password_ok

    def issue(self, username: str, role: Role = "admin", *, now: float | None = None) -> str:
        issued = int(time.time() if now is None else now)
        claims = {
            "sub": username,
            "role": role,
            "iat": issued,
            "exp": issued + self.ttl_seconds,
            "iss": "ledgerflow",
        }
        return str(jwt.encode(claims, self.secret, algorithm="HS256"))

    def verify(self, token: str) -> TokenClaims:
        """The token's claims; raises :class:`InvalidToken` (bad signature, expired,
        missing claims, unknown role)."""
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=["HS256"],
                issuer="ledgerflow",
                options={"require": ["sub", "exp", "iat", "role"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from None
        try:
            role = parse_role(str(claims["role"]))
        except ValueError as exc:
            raise InvalidToken(str(exc)) from None
        kind = claims.get("kind", "user")
        subject = str(claims["sub"])
        if kind == TASK_TOKEN_KIND:
            if not subject.startswith(TASK_SUBJECT_PREFIX):
                raise InvalidToken(
                    f"a task token's subject must start with {TASK_SUBJECT_PREFIX!r}"
                )
            role = "viewer"  # whatever the token says: a task only reads
        elif kind != "user":
            raise InvalidToken(f"unknown token kind {kind!r}")
        return TokenClaims(
            username=subject,
            role=role,
            issued_at=int(claims["iat"]),
            expires_at=int(claims["exp"]),
            kind=kind,
        )
