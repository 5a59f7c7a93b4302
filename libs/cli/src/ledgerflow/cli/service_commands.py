"""Service commands: run one ledgerflow service in this process until a signal.

Each imports its service only when asked for, so ``ledgerflow dags list`` does not load
Kafka or Postgres clients, and so the services stay unaware of one another.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Coroutine
from typing import Any

from ledgerflow.cli.context import CliContext
from ledgerflow.cli.errors import CliError
from ledgerflow.cli.logging_setup import configure_logging
from ledgerflow.cli.service_runner import run_service


def _entry_point(module: str, function: str) -> Callable[..., Coroutine[Any, Any, Any]]:
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise CliError(f"cannot load {module}: {exc}") from exc
    try:
        return getattr(mod, function)  # type: ignore[no-any-return]
    except AttributeError as exc:
        raise CliError(f"{module} has no {function}()") from exc


def cmd_api(args: argparse.Namespace, ctx: CliContext) -> int:
    configure_logging("api")
    serve = _entry_point("ledgerflow.api.server", "serve")
    return run_service("api", lambda: serve(ctx.settings))


def cmd_projector(args: argparse.Namespace, ctx: CliContext) -> int:
    configure_logging("projector")
    run = _entry_point("ledgerflow.api.projector", "run")
    return run_service("projector", lambda: run(ctx.settings, rebuild=args.rebuild))


def cmd_scheduler(args: argparse.Namespace, ctx: CliContext) -> int:
    configure_logging("scheduler")
    run = _entry_point("ledgerflow.scheduler.service", "run")
    return run_service("scheduler", lambda: run(ctx.settings))


def cmd_executor(args: argparse.Namespace, ctx: CliContext) -> int:
    configure_logging("executor")
    run = _entry_point("ledgerflow.executor.service", "run")
    return run_service("executor", lambda: run(ctx.settings, queue=args.queue, slots=args.slots))


def cmd_ui(args: argparse.Namespace, ctx: CliContext) -> int:
    configure_logging("ui")
    serve = _entry_point("ledgerflow.ui.server", "serve")
    return run_service("ui", lambda: serve(ctx.settings))
