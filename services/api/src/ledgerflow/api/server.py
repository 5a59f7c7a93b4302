"""Run the API with uvicorn, programmatically: ``await serve(settings)``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import uvicorn
from ledgerflow.api.app import create_app
from ledgerflow.common.settings import Settings


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to the caller (the CLI cancels us)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(settings: Settings) -> None:
    """Serve on ``settings.api_host:api_port`` until cancelled, then shut down cleanly
    (the lifespan closes the pool and the producer)."""
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_level="info",
        log_config=None,  # the CLI configured logging (JSON lines or text)
        access_log=False,
        lifespan="on",
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(), name="ledgerflow-api")
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
        raise
    if server.started is False and not task.cancelled():
        # uvicorn returns (rather than raising) when start-up fails, e.g. port in use.
        raise RuntimeError(f"the API could not start on {settings.api_host}:{settings.api_port}")
