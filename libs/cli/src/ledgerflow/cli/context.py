"""What every command handler receives besides its parsed arguments."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx
from ledgerflow.cli.api_client import ApiClient, resolve_credentials
from ledgerflow.common.settings import Settings


@dataclass(frozen=True)
class CliContext:
    """Settings built once in ``main``, plus seams for tests.

    ``transport`` lets tests put a fake API (``httpx.MockTransport``) behind the client
    commands; ``environ`` is where credentials are read from.
    """

    settings: Settings
    transport: httpx.BaseTransport | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    output: str = "table"
    """``--output``: table, json or yaml (see :mod:`ledgerflow.cli.output`)."""
    output_given: bool = False
    """Whether ``--output`` was given (some commands default to another format)."""
    api_url: str | None = None
    """From ``--api-url`` or the config file (None: the settings' API URL)."""
    token: str | None = None
    """A bearer token or API key from ``--token``/``--api-key``, the environment or the
    config file (None: log in with a username and password)."""

    def api_client(self) -> ApiClient:
        if self.api_url is None and self.token is None:
            return ApiClient.from_settings(
                self.settings, environ=self.environ, transport=self.transport
            )
        username, password = resolve_credentials(self.settings, self.environ)
        return ApiClient(
            self.api_url or self.settings.resolved_api_url,
            username=username,
            password=password,
            transport=self.transport,
            api_key=self.token,
        )
