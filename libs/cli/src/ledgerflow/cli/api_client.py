"""A small synchronous client for the ledgerflow REST API, used by the client commands.

It logs in lazily (``POST /auth/token``) and turns transport and HTTP failures into
:class:`CliError` messages a person can act on, never a traceback.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Self

import httpx
from ledgerflow.cli.errors import CliError
from ledgerflow.common.settings import Settings

STANDALONE_ENV_FILE = Path(".ledgerflow") / "standalone.env"


def read_env_file(path: Path) -> dict[str, str]:
    """Read ``KEY=VALUE`` lines (``#`` comments and blank lines ignored)."""
    values: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return values
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip()
    return values


def resolve_credentials(settings: Settings, environ: Mapping[str, str]) -> tuple[str, str | None]:
    """Username and password for the client commands.

    Username: ``LEDGERFLOW_USERNAME``, else the admin user. Password:
    ``LEDGERFLOW_PASSWORD``, else ``LEDGERFLOW_ADMIN_PASSWORD``, else the one
    ``ledgerflow standalone`` generated in ``.ledgerflow/standalone.env`` here, so the
    commands work next to a running ``make up`` without exporting anything.
    """
    username = environ.get("LEDGERFLOW_USERNAME") or settings.admin_username
    password = environ.get("LEDGERFLOW_PASSWORD")
    if not password and settings.admin_password is not None:
        password = settings.admin_password.get_secret_value()
    if not password:
        password = read_env_file(STANDALONE_ENV_FILE).get("LEDGERFLOW_ADMIN_PASSWORD")
    return username, password or None


def _detail(response: httpx.Response) -> str:
    """The most useful one-line description of an error response."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return text.splitlines()[0][:200] if text else response.reason_phrase
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, dict) and "message" in detail:
        return str(detail["message"])
    if isinstance(detail, list):  # FastAPI validation errors
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
                parts.append(f"{loc}: {item.get('msg')}" if loc else str(item.get("msg")))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(detail)


class ApiClient:
    """Authenticated calls to the API at ``base_url``; use as a context manager."""

    def __init__(
        self,
        base_url: str,
        *,
        username: str,
        password: str | None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        api_key: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self.api_key = api_key  # an API key (lfk_...) is sent as the bearer token as is
        self._http = httpx.Client(base_url=self.base_url, transport=transport, timeout=timeout)
        self._token: str | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        environ: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> ApiClient:
        username, password = resolve_credentials(
            settings, os.environ if environ is None else environ
        )
        env = os.environ if environ is None else environ
        return cls(
            settings.resolved_api_url,
            username=username,
            password=password,
            transport=transport,
            api_key=env.get("LEDGERFLOW_API_KEY") or None,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise CliError(f"the API at {self.base_url} did not answer in time ({exc!s})") from exc
        except httpx.TransportError as exc:
            # "[Errno 111] Connection refused" -> "connection refused"
            reason = re.sub(r"^\[Errno -?\d+\] ", "", str(exc)) or type(exc).__name__
            reason = reason[:1].lower() + reason[1:]
            raise CliError(f"cannot reach the API at {self.base_url}: {reason}") from exc

    def login(self) -> str:
        """Exchange the username and password for a bearer token (cached); with
        ``LEDGERFLOW_API_KEY`` set, the key is the token."""
        if self._token is None and self.api_key:
            self._token = self.api_key
        if self._token is None:
            response = self._send(
                "POST",
                "/auth/token",
                json={"username": self.username, "password": self.password or ""},
            )
            if response.status_code in (400, 401, 403, 422):
                hint = (
                    ""
                    if self.password
                    else " (no password given: set LEDGERFLOW_PASSWORD or LEDGERFLOW_ADMIN_PASSWORD)"
                )
                raise CliError(f"authentication failed for user {self.username!r}{hint}")
            self._raise_for_status(response, "POST /auth/token")
            token = response.json().get("access_token")
            if not token:
                raise CliError("authentication failed: the API returned no access token")
            self._token = str(token)
        return self._token

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        accept: Collection[int] = (),
    ) -> httpx.Response:
        """Send an authenticated request; error statuses raise CliError unless in ``accept``."""
        headers = {"Authorization": f"Bearer {self.login()}"}
        response = self._send(method, path, json=json, params=params, headers=headers)
        if response.status_code in accept:
            return response
        self._raise_for_status(response, f"{method} {path}")
        return response

    def get_json(self, path: str, *, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params).json()

    def _raise_for_status(self, response: httpx.Response, what: str) -> None:
        status = response.status_code
        if status < 400:
            return
        if status == 401:
            raise CliError("authentication failed: the API rejected the token")
        if status == 403:
            raise CliError(f"permission denied: {_detail(response)}")
        if status == 404:
            raise CliError(f"not found: {_detail(response)}")
        raise CliError(f"the API answered {status} to {what}: {_detail(response)}")
