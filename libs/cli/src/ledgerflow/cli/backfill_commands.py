"""``ledgerflow dags backfill`` and ``ledgerflow backfills list|show|pause|unpause|cancel``
(Airflow 3's ``airflow backfill create`` and the backfill REST endpoints), through the
REST API (``/api/v2/backfills``)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from ledgerflow.cli import output
from ledgerflow.cli.api_client import ApiClient
from ledgerflow.cli.client_commands import (
    EXIT_RUN_FAILED,
    EXIT_WAIT_TIMEOUT,
    parse_conf,
    print_table,
)
from ledgerflow.cli.context import CliContext
from ledgerflow.cli.errors import CliError

BASE = "/api/v2/backfills"
COLUMNS = ("id", "dag_id", "from", "to", "reprocess", "max_active_runs", "paused", "completed")
RUN_COLUMNS = ("#", "logical_date", "action", "run_id", "state", "reason")


def _row(b: dict[str, Any]) -> tuple[Any, ...]:
    return (
        b["id"],
        b["dag_id"],
        b["from_date"],
        b["to_date"],
        b["reprocess_behavior"],
        b["max_active_runs"],
        b["is_paused"],
        b.get("completed_at") or ("cancelled" if b.get("cancelled") else ""),
    )


def _run_rows(b: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (
            r["sort_ordinal"],
            r["logical_date"],
            r["action"],
            r.get("dag_run_id") or "",
            r.get("state") or "",
            r.get("exception_reason") or "",
        )
        for r in b.get("dag_runs") or []
    ]


def _show(ctx: CliContext, b: dict[str, Any]) -> None:
    if ctx.output != "table":
        output.emit(ctx.output, b)
        return
    print_table(COLUMNS, [_row(b)])
    if b.get("dag_runs"):
        print()
        print_table(RUN_COLUMNS, _run_rows(b))


# --------------------------------------------------------------------------- create
def cmd_dags_backfill(args: argparse.Namespace, ctx: CliContext) -> int:
    """Create a backfill (or, with --dry-run, list the logical dates it would run);
    with --wait, follow it: exit 0 when every run succeeded, 1 if one failed."""
    body: dict[str, Any] = {
        "dag_id": args.dag_id,
        "from_date": args.start,
        "to_date": args.end,
        "run_backwards": args.run_backwards,
        "dag_run_conf": parse_conf(args.conf),
        "reprocess_behavior": args.reprocess_behavior,
        "max_active_runs": args.max_active_runs,
    }
    with ctx.api_client() as api:
        if args.dry_run:
            found = api.request("POST", f"{BASE}/dry_run", json=body).json()
            if ctx.output != "table":
                output.emit(ctx.output, found)
            else:
                for item in found.get("backfills", []):
                    print(item["logical_date"])
                print(f"{found.get('total_entries', 0)} run(s) would be created", file=sys.stderr)
            return 0
        created = api.request("POST", BASE, json=body).json()
        backfill_id = int(created["id"])
        print(f"backfill {backfill_id} created for {args.dag_id}", flush=True)
        if not args.wait:
            return 0
        return _wait(api, backfill_id, timeout=args.timeout, interval=args.poll)


def _wait(api: ApiClient, backfill_id: int, *, timeout: float, interval: float) -> int:
    deadline = time.monotonic() + timeout
    seen: dict[str, str] = {}
    while True:
        response = api.request("GET", f"{BASE}/{backfill_id}", accept=(404,))
        # 404 right after creating just means the projection has not caught up yet.
        b = response.json() if response.status_code == 200 else None
        for r in (b or {}).get("dag_runs") or []:
            run_id, state = r.get("dag_run_id"), r.get("state")
            if r["action"] != "skip" and run_id and state and seen.get(run_id) != state:
                seen[run_id] = state
                print(f"  {run_id}: {state}", file=sys.stderr, flush=True)
        if b is not None and b.get("completed_at"):
            runs = [r for r in b.get("dag_runs") or [] if r["action"] != "skip"]
            failed = [r for r in runs if r.get("state") != "success"]
            word = "cancelled" if b.get("cancelled") else "completed"
            print(
                f"backfill {backfill_id} {word}: {len(runs) - len(failed)} of {len(runs)} "
                "run(s) succeeded",
                file=sys.stderr,
            )
            return EXIT_RUN_FAILED if failed else 0
        if time.monotonic() >= deadline:
            raise CliError(
                f"timed out after {timeout:g}s waiting for backfill {backfill_id}",
                exit_code=EXIT_WAIT_TIMEOUT,
            )
        time.sleep(interval)


# --------------------------------------------------------------------------- manage
def cmd_backfills_list(args: argparse.Namespace, ctx: CliContext) -> int:
    with ctx.api_client() as api:
        found = api.get_json(BASE, params={"dag_id": args.dag_id, "limit": 1000})
    if ctx.output != "table":
        output.emit(ctx.output, found.get("backfills", []))
        return 0
    print_table(COLUMNS, [_row(b) for b in found.get("backfills", [])])
    return 0


def _get(api: ApiClient, backfill_id: int) -> dict[str, Any]:
    response = api.request("GET", f"{BASE}/{backfill_id}", accept=(404,))
    if response.status_code == 404:
        raise CliError(f"backfill {backfill_id} does not exist")
    result: dict[str, Any] = response.json()
    return result


def cmd_backfills_show(args: argparse.Namespace, ctx: CliContext) -> int:
    with ctx.api_client() as api:
        _show(ctx, _get(api, args.backfill_id))
    return 0


def _change(args: argparse.Namespace, ctx: CliContext, action: str) -> int:
    with ctx.api_client() as api:
        response = api.request("PUT", f"{BASE}/{args.backfill_id}/{action}", accept=(404, 409))
    if response.status_code == 404:
        raise CliError(f"backfill {args.backfill_id} does not exist")
    if response.status_code == 409:
        raise CliError(f"backfill {args.backfill_id} is already completed")
    verb = {"pause": "paused", "unpause": "unpaused", "cancel": "cancelled"}[action]
    print(f"backfill {args.backfill_id} {verb}")
    return 0


def cmd_backfills_pause(args: argparse.Namespace, ctx: CliContext) -> int:
    return _change(args, ctx, "pause")


def cmd_backfills_unpause(args: argparse.Namespace, ctx: CliContext) -> int:
    return _change(args, ctx, "unpause")


def cmd_backfills_cancel(args: argparse.Namespace, ctx: CliContext) -> int:
    return _change(args, ctx, "cancel")


# --------------------------------------------------------------------------- parser
def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
        return value

    return parse


def register(commands: Any, dags_cmds: Any, help_of: Any) -> None:
    """Add ``dags backfill`` to ``dags_cmds`` and the ``backfills`` group to ``commands``."""
    p = dags_cmds.add_parser(
        "backfill",
        help="create runs of a DAG for past dates (a backfill)",
        description="Create a backfill: a run for each logical date of the DAG's schedule "
        "between --start and --end. With --wait, follow it: exit 0 when every run "
        "succeeded, 1 if one failed, 124 on timeout.",
    )
    p.add_argument("dag_id")
    p.add_argument("--start", "--from-date", required=True, help="ISO 8601 first date")
    p.add_argument("--end", "--to-date", required=True, help="ISO 8601 last date (inclusive)")
    p.add_argument(
        "--reprocess-behavior",
        choices=("none", "failed", "completed"),
        default="none",
        help="dates that already have a run: skip them (none, the default), re-run "
        "failed runs, or re-run every finished run (completed)",
    )
    p.add_argument(
        "--max-active-runs",
        type=_positive(int),
        default=10,
        help="backfill runs running at once (default: 10)",
    )
    p.add_argument("--run-backwards", action="store_true", help="latest date first")
    p.add_argument("--conf", metavar="JSON", help="dag_run_conf for every run, a JSON object")
    p.add_argument("--dry-run", action="store_true", help="list the dates, create nothing")
    p.add_argument("--wait", action="store_true", help="wait for the backfill to complete")
    p.add_argument(
        "--timeout",
        type=_positive(float),
        default=3600.0,
        metavar="S",
        help="with --wait, give up after S seconds (default: 3600)",
    )
    p.add_argument("--poll", type=_positive(float), default=0.5, help=argparse.SUPPRESS)
    p.set_defaults(handler=cmd_dags_backfill)

    group = commands.add_parser("backfills", help="list, show, pause, unpause, cancel backfills")
    cmds = group.add_subparsers(dest="backfills_command", metavar="COMMAND")
    group.set_defaults(handler=help_of(group))
    p = cmds.add_parser("list", help="a DAG's backfills")
    p.add_argument("dag_id")
    p.set_defaults(handler=cmd_backfills_list)
    p = cmds.add_parser("show", help="a backfill and its runs")
    p.add_argument("backfill_id", type=int)
    p.set_defaults(handler=cmd_backfills_show)
    for name, handler, what in (
        ("pause", cmd_backfills_pause, "create no more runs for now"),
        ("unpause", cmd_backfills_unpause, "resume creating runs"),
        ("cancel", cmd_backfills_cancel, "stop: no more runs; queued ones fail"),
    ):
        p = cmds.add_parser(name, help=what)
        p.add_argument("backfill_id", type=int)
        p.set_defaults(handler=handler)
