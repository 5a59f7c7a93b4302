"""The ``ledgerflow`` command: argument parsing and dispatch.

``main`` builds the settings from the environment (never at import time), calls one
handler and turns a :class:`CliError` into ``ledgerflow: <message>`` on stderr and an exit
code. Handlers live in :mod:`service_commands`, :mod:`client_commands` and
:mod:`standalone`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

import httpx
from ledgerflow.cli import (
    backfill_commands,
    cli_config,
    config_commands,
    dags_test,
    events_tail,
    inspect_commands,
    output,
    pools_commands,
    users_commands,
)
from ledgerflow.cli import client_commands as client
from ledgerflow.cli import service_commands as services
from ledgerflow.cli.context import CliContext
from ledgerflow.cli.errors import CliError
from ledgerflow.common.settings import Settings
from pydantic import ValidationError

PROG = "ledgerflow"


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree; each leaf sets ``handler(args, ctx) -> exit code``."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="ledgerflow: an event-sourced workflow orchestrator over Kafka.",
        epilog="Configuration comes from LEDGERFLOW_* environment variables.",
    )
    parser.add_argument(
        "-o",
        "--output",
        choices=output.FORMATS,
        default=None,
        help="how client commands print results (default: table)",
    )
    parser.add_argument("--api-url", help="the API (default: LEDGERFLOW_API_URL, config file)")
    parser.add_argument(
        "--token",
        "--api-key",
        dest="token",
        help="a bearer token or API key (default: LEDGERFLOW_TOKEN/LEDGERFLOW_API_KEY, "
        "config file ~/.config/ledgerflow/config.toml, else log in with a password)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    # --- services -----------------------------------------------------------------
    p = commands.add_parser("api", help="run the REST API")
    p.set_defaults(handler=services.cmd_api)
    p = commands.add_parser("projector", help="run the projector (events -> Postgres)")
    p.add_argument(
        "--rebuild", action="store_true", help="replay the whole log into a fresh schema"
    )
    p.set_defaults(handler=services.cmd_projector)
    p = commands.add_parser("scheduler", help="run the scheduler")
    p.set_defaults(handler=services.cmd_scheduler)
    p = commands.add_parser("executor", help="run an executor for one queue")
    p.add_argument("--queue", default="default", help="work queue to consume (default: default)")
    p.add_argument(
        "--slots", type=_positive_int, default=4, help="task attempts run at once (default: 4)"
    )
    p.set_defaults(handler=services.cmd_executor)
    p = commands.add_parser("ui", help="run the web UI")
    p.set_defaults(handler=services.cmd_ui)

    p = commands.add_parser(
        "standalone",
        help="run every service on this machine (Kafka and Postgres must be reachable)",
    )
    p.add_argument(
        "--load-examples", metavar="DIR", help="submit every *.py in DIR once the API is up"
    )
    p.add_argument(
        "--executors", type=_positive_int, default=1, help="executor processes (default: 1)"
    )
    p.add_argument(
        "--queue", default="default", help="queue the executors consume (default: default)"
    )
    p.add_argument("--slots", type=_positive_int, default=4, help="slots per executor (default: 4)")
    p.add_argument(
        "--state-dir", default=".ledgerflow", help="credentials and logs (default: .ledgerflow)"
    )
    p.add_argument(
        "--startup-timeout",
        type=_positive_float,
        default=180.0,
        metavar="S",
        help="seconds to wait for the API to be healthy (default: 180)",
    )
    p.add_argument(
        "--grace",
        type=_positive_float,
        default=10.0,
        metavar="S",
        help="seconds between SIGTERM and SIGKILL when stopping (default: 10)",
    )
    p.set_defaults(handler=_run_standalone)

    # --- dags -----------------------------------------------------------------------
    dags = commands.add_parser("dags", help="submit, list, trigger, pause DAGs")
    dags_cmds = dags.add_subparsers(dest="dags_command", metavar="COMMAND")
    dags.set_defaults(handler=_help_of(dags))
    p = dags_cmds.add_parser(
        "submit",
        help="submit DAG files to the API",
        description="Submit DAG files. Template files next to each one (.sql, .sh, .bash, "
        ".hql, .json, .yaml, .yml, .j2, .jinja2, .txt, .md; in its directory and two levels "
        "of subdirectories) are sent with it.",
    )
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument(
        "--no-extra-files",
        action="store_true",
        help="send only the DAG files, not the template files next to them",
    )
    p.set_defaults(handler=client.cmd_dags_submit)
    dags_test.register(dags_cmds)
    p = dags_cmds.add_parser("list", help="list DAGs")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=client.cmd_dags_list)
    p = dags_cmds.add_parser(
        "trigger",
        help="trigger a DAG run and print its id",
        description="Trigger a DAG run and print its id. With --wait, follow it: exit 0 on "
        "success, 1 on failure, 124 on timeout.",
    )
    p.add_argument("dag_id")
    p.add_argument("--conf", metavar="JSON", help="run configuration, a JSON object")
    p.add_argument("--run-id", help="the run id to use (default: chosen by the API)")
    p.add_argument("--logical-date", help="ISO 8601 logical date (default: now)")
    p.add_argument("--wait", action="store_true", help="wait for the run to finish")
    p.add_argument(
        "--timeout",
        type=_positive_float,
        default=3600.0,
        metavar="S",
        help="with --wait, give up after S seconds (default: 3600)",
    )
    p.add_argument("--poll", type=_positive_float, default=0.5, metavar="S", help=argparse.SUPPRESS)
    p.set_defaults(handler=client.cmd_dags_trigger)
    for name, handler in (("pause", client.cmd_dags_pause), ("unpause", client.cmd_dags_unpause)):
        p = dags_cmds.add_parser(name, help=f"{name} a DAG")
        p.add_argument("dag_id")
        p.set_defaults(handler=handler)

    # --- runs -----------------------------------------------------------------------
    runs = commands.add_parser("runs", help="inspect DAG runs")
    runs_cmds = runs.add_subparsers(dest="runs_command", metavar="COMMAND")
    runs.set_defaults(handler=_help_of(runs))
    p = runs_cmds.add_parser("show", help="a run and its task instances")
    p.add_argument("dag_id")
    p.add_argument("run_id")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=client.cmd_runs_show)
    p = runs_cmds.add_parser("list", help="runs of a DAG")
    p.add_argument("dag_id")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=client.cmd_runs_list)

    # --- tasks ----------------------------------------------------------------------
    tasks = commands.add_parser("tasks", help="inspect task instances")
    tasks_cmds = tasks.add_subparsers(dest="tasks_command", metavar="COMMAND")
    tasks.set_defaults(handler=_help_of(tasks))
    p = tasks_cmds.add_parser("logs", help="print a task attempt's log")
    p.add_argument("dag_id")
    p.add_argument("run_id")
    p.add_argument("task_id")
    p.add_argument(
        "--try",
        dest="try_number",
        type=_positive_int,
        metavar="N",
        help="attempt number (default: the latest)",
    )
    p.add_argument("--map-index", type=int, default=-1, help="mapped task index (default: -1)")
    p.add_argument("--timestamps", action="store_true", help="prefix each line with its timestamp")
    p.set_defaults(handler=client.cmd_tasks_logs)

    inspect_commands.register(commands, dags_cmds, runs_cmds, tasks_cmds)
    events_tail.register(commands, _help_of)

    # --- variables, connections -----------------------------------------------------
    config_commands.register(commands, _help_of)
    users_commands.register(commands, _help_of)  # users, API keys
    pools_commands.register(commands, _help_of)
    backfill_commands.register(commands, dags_cmds, _help_of)

    parser.set_defaults(handler=_help_of(parser))
    return parser


Handler = Callable[[argparse.Namespace, CliContext], int]


def _help_of(parser: argparse.ArgumentParser) -> Handler:
    """A handler for a command group called without a subcommand: usage, exit 2."""

    def show_help(args: argparse.Namespace, ctx: CliContext) -> int:
        parser.print_help(sys.stderr)
        return 2

    return show_help


def _run_standalone(args: argparse.Namespace, ctx: CliContext) -> int:
    from ledgerflow.cli.standalone import run_standalone  # only this command needs it

    return run_standalone(args, ctx)


def _context(
    args: argparse.Namespace, settings: Settings, transport: httpx.BaseTransport | None
) -> CliContext:
    """The handlers' context: output format and where the API is (flags, environment,
    config file; see :mod:`ledgerflow.cli.cli_config`)."""
    environ = dict(os.environ)
    client = cli_config.resolve(
        api_url_flag=getattr(args, "api_url", None),
        token_flag=getattr(args, "token", None),
        environ=environ,
    )
    chosen = getattr(args, "output", None)
    return CliContext(
        settings=settings,
        transport=transport,
        environ=environ,
        output=chosen or "table",
        output_given=chosen is not None,
        api_url=client.api_url,
        token=client.token,
    )


def main(argv: Sequence[str] | None = None, *, transport: httpx.BaseTransport | None = None) -> int:
    """Run the command in ``argv`` (default: ``sys.argv[1:]``); returns the exit code.

    ``transport`` puts a fake API behind the client commands in tests.
    """
    args = build_parser().parse_args(argv)
    try:
        try:
            settings = Settings()
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first.get("loc", ()))
            raise CliError(
                f"invalid configuration: LEDGERFLOW_{field.upper()}: {first.get('msg')}"
            ) from exc
        ctx = _context(args, settings, transport)
        return int(args.handler(args, ctx))
    except CliError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `ledgerflow tasks logs ... | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
