"""Service commands: run one ledgerflow service in this process until a signal.

Each imports its service only when asked for, so ``ledgerflow dags list`` does not load
Kafka or Postgres clients, and so the services stay unaware of one another.

With ``LEDGERFLOW_PROBE_PORT`` set, a probe server (:mod:`ledgerflow.common.probes`)
runs next to the service on the same event loop: ``/healthz`` for liveness and
``/readyz`` for readiness (see :mod:`ledgerflow.cli.readiness` for what "ready" means
per service). Containers set it; ``ledgerflow standalone`` does not (its processes would
share one port).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Coroutine
from typing import Any

from ledgerflow.cli.context import CliContext
from ledgerflow.cli.errors import CliError
from ledgerflow.cli.logging_setup import configure_service
from ledgerflow.cli.readiness import ClosableCheck, GroupMembership, ProjectionCaughtUp
from ledgerflow.cli.service_runner import ServiceFactory, run_service
from ledgerflow.common.probes import ProbeServer
from ledgerflow.common.settings import Settings

ReadinessFactory = Callable[[], ClosableCheck]


def _entry_point(module: str, function: str) -> Callable[..., Coroutine[Any, Any, Any]]:
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise CliError(f"cannot load {module}: {exc}") from exc
    try:
        return getattr(mod, function)  # type: ignore[no-any-return]
    except AttributeError as exc:
        raise CliError(f"{module} has no {function}()") from exc


def with_probes(
    name: str,
    settings: Settings,
    make_coroutine: ServiceFactory,
    readiness: ReadinessFactory | None = None,
) -> ServiceFactory:
    """``make_coroutine`` with a probe server around it when ``probe_port`` is set.

    The probe server starts first (a taken port fails the start at once) and stops
    after the service has finished its own shutdown, so liveness keeps answering during
    a graceful stop.
    """
    port = settings.probe_port
    if port is None:
        return make_coroutine

    async def run() -> None:
        check = readiness() if readiness is not None else None
        try:
            async with ProbeServer(settings.probe_host, port, readiness=check, service=name):
                await make_coroutine()
        finally:
            if check is not None:
                await check.aclose()

    return run


def cmd_api(args: argparse.Namespace, ctx: CliContext) -> int:
    configure_service("api")
    serve = _entry_point("ledgerflow.api.server", "serve")
    return run_service("api", with_probes("api", ctx.settings, lambda: serve(ctx.settings)))


def cmd_projector(args: argparse.Namespace, ctx: CliContext) -> int:
    configure_service("projector")
    run = _entry_point("ledgerflow.api.projector", "run")
    settings = ctx.settings
    return run_service(
        "projector",
        with_probes(
            "projector",
            settings,
            lambda: run(settings, rebuild=args.rebuild),
            lambda: ProjectionCaughtUp(settings),
        ),
    )


def cmd_scheduler(args: argparse.Namespace, ctx: CliContext) -> int:
    configure_service("scheduler")
    run = _entry_point("ledgerflow.scheduler.service", "run")
    settings = ctx.settings
    group = str(importlib.import_module("ledgerflow.scheduler.service").group_id_for(settings))
    return run_service(
        "scheduler",
        with_probes(
            "scheduler",
            settings,
            lambda: run(settings),
            lambda: GroupMembership(settings, group),
        ),
    )


def cmd_executor(args: argparse.Namespace, ctx: CliContext) -> int:
    configure_service("executor")
    run = _entry_point("ledgerflow.executor.service", "run")
    group_id_for = _entry_point("ledgerflow.executor.service", "group_id_for")
    settings = ctx.settings
    group = str(group_id_for(settings, args.queue))
    return run_service(
        "executor",
        with_probes(
            "executor",
            settings,
            lambda: run(settings, queue=args.queue, slots=args.slots),
            lambda: GroupMembership(settings, group),
        ),
    )


def cmd_ui(args: argparse.Namespace, ctx: CliContext) -> int:
    configure_service("ui")
    serve = _entry_point("ledgerflow.ui.server", "serve")
    return run_service("ui", with_probes("ui", ctx.settings, lambda: serve(ctx.settings)))
