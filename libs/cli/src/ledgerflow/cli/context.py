"""What every command handler receives besides its parsed arguments."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx
from ledgerflow.cli.api_client import ApiClient
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

    def api_client(self) -> ApiClient:
        return ApiClient.from_settings(
            self.settings, environ=self.environ, transport=self.transport
        )
