"""``serve(settings)``: the UI on ``settings.ui_host:ui_port`` until cancelled."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn
from ledgerflow.common.settings import Settings
from ledgerflow.ui.app import create_app

logger = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the process owner (the CLI) turns
    signals into cancellation of ``serve``, and we shut uvicorn down gracefully then."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def install_signal_handlers(self) -> None:  # older uvicorn versions
        pass


def _listen(host: str, port: int) -> socket.socket:
    """Bind before starting uvicorn, so a busy port is an error we can word ourselves."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


async def serve(settings: Settings) -> None:
    """Serve the UI until cancelled; on cancellation, finish open requests and return."""
    sock = _listen(settings.ui_host, settings.ui_port)
    config = uvicorn.Config(
        create_app(settings),
        log_config=None,  # the CLI configured logging (JSON lines or text)
        access_log=False,  # the API logs requests; the UI only serves files and proxies
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    logger.info(
        "UI on http://%s:%s, API at %s",
        settings.ui_host,
        settings.ui_port,
        settings.resolved_api_url,
    )
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        server.should_exit = True
        await task
        raise
    finally:
        sock.close()
