"""Run one service coroutine until SIGTERM/SIGINT, then cancel it and exit cleanly.

Services are ``async def run(settings, ...)`` functions that run until cancelled and
clean up in ``finally``/``async with`` blocks. Signals belong to the process, so the CLI
(not the service) turns them into cancellation of that one task.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Coroutine
from typing import Any

from ledgerflow.common.gc_tuning import tune_gc
from ledgerflow.common.telemetry import configure_tracing
from ledgerflow.common.telemetry import shutdown as shutdown_tracing

logger = logging.getLogger("ledgerflow.cli")

ServiceFactory = Callable[[], Coroutine[Any, Any, Any]]


def run_service(name: str, make_coroutine: ServiceFactory) -> int:
    """Run the coroutine made by ``make_coroutine`` on a fresh event loop.

    Returns the process exit code: 0 after a signal-requested stop or a normal return,
    1 if the service failed.
    """
    # Traces go where the standard OTEL_* variables say; off when none is set.
    if configure_tracing(f"ledgerflow-{name}"):
        logger.info("%s: exporting traces (OTEL_* variables)", name)
    # The service's modules are imported by now: out of the collector's sight, and no
    # full collection pausing the hot path every few seconds (gc_tuning).
    tune_gc()
    try:
        return asyncio.run(_run_until_signalled(name, make_coroutine))
    finally:
        shutdown_tracing()  # exports the spans still buffered


async def _run_until_signalled(name: str, make_coroutine: ServiceFactory) -> int:
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(make_coroutine())
    stop_requested = False

    def request_stop(signum: signal.Signals) -> None:
        nonlocal stop_requested
        if stop_requested:
            return
        stop_requested = True
        logger.info("%s: received %s, stopping", name, signum.name)
        task.cancel()

    handled = (signal.SIGTERM, signal.SIGINT)
    for signum in handled:
        loop.add_signal_handler(signum, request_stop, signum)
    logger.info("%s: started", name)
    try:
        await task
    except asyncio.CancelledError:
        if not stop_requested:
            raise
        logger.info("%s: stopped", name)
        return 0
    except Exception as exc:
        logger.exception("%s: failed: %s", name, exc)
        return 1
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
    logger.info("%s: finished", name)
    return 0
