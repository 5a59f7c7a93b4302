"""A tiny HTTP server for container probes: ``/healthz`` (liveness), ``/readyz`` (readiness).

The scheduler, executor and projector serve no HTTP of their own, yet Kubernetes and
docker compose need something to probe. The CLI starts a :class:`ProbeServer` next to
the service, on the same event loop (``LEDGERFLOW_PROBE_PORT``), so:

- ``GET /healthz`` answers 200 while the event loop turns. A loop blocked by a stuck
  call stops answering, the probe times out and the container is restarted. It never
  looks at Kafka or Postgres: an outage of theirs must not restart every pod.
- ``GET /readyz`` answers 200 when the readiness check says so (consumer group joined,
  projection caught up), else 503 with the reason. No check means ready once started.

Plain ``asyncio`` streams, no framework: it must keep answering whatever the service's
web stack does, and it costs nothing on the hot path.

- ``GET /metrics`` answers the process's metrics in the Prometheus text format
  (:mod:`ledgerflow.common.metrics`; empty until ``configure_metrics`` ran).

``python -m ledgerflow.common.probes check [URL]`` is the image's ``HEALTHCHECK`` (the
slim image has no curl).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from ledgerflow.common.metrics import PROMETHEUS_CONTENT_TYPE, metrics_response

log = logging.getLogger(__name__)

LIVENESS_PATH = "/healthz"
READINESS_PATH = "/readyz"
METRICS_PATH = "/metrics"
PROBE_PATHS = (LIVENESS_PATH, READINESS_PATH, METRICS_PATH)
DEFAULT_PROBE_PORT = 8090  # the port the container image and the manifests use

READ_TIMEOUT_S = 5.0
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
}


@dataclass(frozen=True)
class Readiness:
    """What a readiness check found: ready or not, and why (shown in the 503 body)."""

    ready: bool
    reason: str = ""


ReadinessCheck = Callable[[], Awaitable[Readiness]]


class ProbeServer:
    """Serves the probe paths on ``host:port`` until stopped.

    ``async with ProbeServer(host, port, readiness=check) as probes: ...``. ``start`` fails
    (``OSError``) when the port is taken: a deployment whose probes cannot answer should
    stop at once rather than be restarted by its liveness probe later. ``stop`` is
    idempotent. ``port=0`` picks a free port (see :attr:`port`).
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        readiness: ReadinessCheck | None = None,
        check_timeout: float = 5.0,
        service: str = "ledgerflow",
    ) -> None:
        self.host = host
        self._port = port
        self._readiness = readiness
        self._check_timeout = check_timeout
        self.service = service
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The port actually bound (differs from the one asked for when that was 0)."""
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        if self._server is not None:
            return
        self._server = await asyncio.start_server(self._handle, self.host, self._port)
        log.info("%s: probes on http://%s:%d%s", self.service, self.host, self.port, PROBE_PATHS)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            with contextlib.suppress(Exception):
                await server.wait_closed()

    async def __aenter__(self) -> ProbeServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def readiness(self) -> Readiness:
        """Run the readiness check; a failing or slow check means not ready."""
        if self._readiness is None:
            return Readiness(True)
        try:
            async with asyncio.timeout(self._check_timeout):
                return await self._readiness()
        except TimeoutError:
            return Readiness(False, f"readiness check took over {self._check_timeout:g}s")
        except Exception as exc:  # the reason goes to the prober, not up the stack
            return Readiness(False, f"readiness check failed: {exc!r}")

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        method = b""
        try:
            async with asyncio.timeout(READ_TIMEOUT_S):
                head = await reader.readuntil(b"\r\n\r\n")
            method = head.split(b" ", 1)[0]
            status, body = await self._respond(head)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            status, body = 400, {"status": "bad request"}
        except ConnectionError:
            writer.close()
            return
        if isinstance(body, bytes):
            payload, content_type = body, PROMETHEUS_CONTENT_TYPE
        else:
            payload, content_type = json.dumps(body).encode(), "application/json"
        lines = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(payload)}",
            "Cache-Control: no-store",
            "Connection: close",
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        if method != b"HEAD":
            writer.write(payload)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()

    async def _respond(self, head: bytes) -> tuple[int, dict[str, object] | bytes]:
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split(" ")
        if len(parts) != 3:
            return 400, {"status": "bad request"}
        method, target, _version = parts
        path = target.split("?", 1)[0]
        if path not in PROBE_PATHS:
            return 404, {"status": "not found", "paths": list(PROBE_PATHS)}
        if method not in ("GET", "HEAD"):
            return 405, {"status": "method not allowed"}
        if path == LIVENESS_PATH:
            return 200, {"status": "alive", "service": self.service}
        if path == METRICS_PATH:
            return 200, await metrics_response()
        result = await self.readiness()
        if result.ready:
            return 200, {"status": "ready", "service": self.service}
        return 503, {"status": "not ready", "service": self.service, "reason": result.reason}


def check(url: str, *, timeout: float = 5.0) -> tuple[bool, str]:
    """GET ``url``: ``(True, body)`` on a 2xx answer, else ``(False, why)``."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our URL
            return True, response.read(2000).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return False, f"{exc.code} {exc.read(2000).decode(errors='replace')}"
    except (urllib.error.URLError, OSError) as exc:
        return False, str(exc)


def default_check_url(environ: Mapping[str, str]) -> str:
    """The liveness URL of this container's own probe server."""
    port = environ.get("LEDGERFLOW_PROBE_PORT") or str(DEFAULT_PROBE_PORT)
    return f"http://127.0.0.1:{port}{LIVENESS_PATH}"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ledgerflow.common.probes check [URL]``: exit 0 when URL answers 2xx.

    Without URL: this container's ``/healthz`` on ``LEDGERFLOW_PROBE_PORT``. Used as the
    image's ``HEALTHCHECK`` and by compose for the api and ui (with their URLs).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] != "check" or len(args) > 2:
        print("usage: python -m ledgerflow.common.probes check [URL]", file=sys.stderr)
        return 2
    url = args[1] if len(args) == 2 else default_check_url(os.environ)
    ok, detail = check(url)
    print(f"{url}: {detail.strip()[:300]}", file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
