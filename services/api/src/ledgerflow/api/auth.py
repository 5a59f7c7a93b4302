"""Bearer tokens for the API: HS256 JWTs for the admin user (roles come later)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import jwt
from ledgerflow.common.settings import Settings


class ConfigurationError(RuntimeError):
    """The API cannot start with these settings. Not retryable: fix the configuration."""

    retryable = False


class InvalidToken(Exception):
    """A bearer token that is missing, malformed, badly signed or expired."""


@dataclass(frozen=True)
class Authenticator:
    """Checks passwords and issues/verifies tokens. Built once per app from settings."""

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

    def check_password(self, username: str, password: str) -> bool:
        user_ok = secrets.compare_digest(username.encode(), self.username.encode())
        password_ok = secrets.compare_digest(password.encode(), self.password.encode())
        return user_ok and password_ok

    def issue(self, username: str) -> str:
        now = int(time.time())
        claims = {"sub": username, "iat": now, "exp": now + self.ttl_seconds, "iss": "ledgerflow"}
        return jwt.encode(claims, self.secret, algorithm="HS256")

    def verify(self, token: str) -> str:
        """The username the token was issued to; raises :class:`InvalidToken`."""
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=["HS256"],
                issuer="ledgerflow",
                options={"require": ["sub", "exp"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from None
        return str(claims["sub"])
