"""Client commands that inspect and change DAGs, runs and tasks beyond the basics:
``dags show|delete|list-runs``, ``tasks list|state|clear``, ``runs history``,
``version``. They print with ``--output table|json|yaml`` (:mod:`ledgerflow.cli.output`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ledgerflow.cli import output
from ledgerflow.cli.client_commands import _dag_path, _q, _run_path
from ledgerflow.cli.context import CliContext
from ledgerflow.cli.errors import CliError

RUN_STATES = ("queued", "running", "success", "failed")


def register(commands: Any, dags_cmds: Any, runs_cmds: Any, tasks_cmds: Any) -> None:
    """Add the commands to the existing groups (and ``version`` at the top)."""
    p = dags_cmds.add_parser("show", help="a DAG's details and tasks")
    p.add_argument("dag_id")
    p.set_defaults(handler=cmd_dags_show)
    p = dags_cmds.add_parser(
        "delete",
        help="delete a DAG and its runs (admin; the event log keeps the history)",
    )
    p.add_argument("dag_id")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(handler=cmd_dags_delete)
    p = dags_cmds.add_parser("list-runs", help="runs of a DAG, newest first, with filters")
    p.add_argument("dag_id", help="a DAG id, or ~ for every DAG")
    p.add_argument("--state", choices=RUN_STATES, action="append", help="only these states")
    p.add_argument("--limit", type=int, default=100, help="at most this many (default: 100)")
    p.set_defaults(handler=cmd_dags_list_runs)

    p = runs_cmds.add_parser("history", help="a run's events, in order")
    p.add_argument("dag_id")
    p.add_argument("run_id")
    p.add_argument("--limit", type=int, default=1000, help="at most this many (default: 1000)")
    p.set_defaults(handler=cmd_runs_history)

    p = tasks_cmds.add_parser("list", help="the tasks of a DAG's latest version")
    p.add_argument("dag_id")
    p.set_defaults(handler=cmd_tasks_list)
    p = tasks_cmds.add_parser("state", help="the state of a task instance")
    p.add_argument("dag_id")
    p.add_argument("run_id")
    p.add_argument("task_id")
    p.add_argument("--map-index", type=int, default=-1, help="mapped task index (default: -1)")
    p.set_defaults(handler=cmd_tasks_state)
    p = tasks_cmds.add_parser(
        "clear",
        help="run task instances again (clearTaskInstances)",
        description="Clear task instances of a DAG so they run again. Lists what it would "
        "clear and asks first, unless --yes; --dry-run only lists.",
    )
    p.add_argument("dag_id")
    p.add_argument("--run-id", help="only this run (default: every run in the date range)")
    p.add_argument("-t", "--task-id", action="append", help="only this task (repeatable)")
    p.add_argument("-s", "--start-date", help="runs with a logical date from this (ISO 8601)")
    p.add_argument("-e", "--end-date", help="runs with a logical date up to this (ISO 8601)")
    p.add_argument("-f", "--only-failed", action="store_true", help="only failed instances")
    p.add_argument("-r", "--only-running", action="store_true", help="only running instances")
    p.add_argument("-u", "--upstream", action="store_true", help="include upstream tasks")
    p.add_argument("-d", "--downstream", action="store_true", help="include downstream tasks")
    p.add_argument("--dry-run", action="store_true", help="list what would be cleared")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(handler=cmd_tasks_clear)

    p = commands.add_parser("version", help="the CLI's and the API's versions")
    p.add_argument("--local", action="store_true", help="only the CLI's (do not ask the API)")
    p.set_defaults(handler=cmd_version)


def _confirm(question: str, assume_yes: bool) -> None:
    if assume_yes:
        return
    if not sys.stdin.isatty():
        raise CliError(f"{question} Not confirmed: pass --yes (stdin is not a terminal)")
    answer = input(f"{question} [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise CliError("cancelled", exit_code=1)


# ---------------------------------------------------------------------------- dags
def cmd_dags_show(args: argparse.Namespace, ctx: CliContext) -> int:
    with ctx.api_client() as api:
        details = api.get_json(f"{_dag_path(args.dag_id)}/details")
        tasks = api.get_json(f"{_dag_path(args.dag_id)}/tasks").get("tasks", [])
    if ctx.output != "table":
        output.emit(ctx.output, {"dag": details, "tasks": tasks})
        return 0
    keys = (
        "dag_id", "description", "is_paused", "timetable_summary", "tags", "owners",
        "fileloc", "latest_version_number", "latest_version_id", "catchup", "start_date",
        "max_active_runs", "max_active_tasks", "last_parsed_time",
    )  # fmt: skip
    output.emit("table", {k: details.get(k) for k in keys if k in details})
    print()
    output.emit("table", tasks, lambda: (("task_id", "operator", "downstream"), _task_rows(tasks)))
    return 0


def _task_rows(tasks: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (t.get("task_id"), t.get("operator_name"), t.get("downstream_task_ids") or [])
        for t in tasks
    ]


def cmd_dags_delete(args: argparse.Namespace, ctx: CliContext) -> int:
    _confirm(
        f"Delete DAG {args.dag_id!r} and all its runs, task instances, logs and XComs?",
        args.yes,
    )
    with ctx.api_client() as api:
        api.request("DELETE", _dag_path(args.dag_id))
    print(f"deleted DAG {args.dag_id}", file=sys.stderr)
    return 0


def run_rows(runs: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (
            r.get("dag_id"),
            r.get("dag_run_id"),
            r.get("state"),
            r.get("run_type"),
            r.get("logical_date"),
            r.get("start_date"),
            r.get("end_date"),
        )
        for r in runs
    ]


RUN_HEADERS = ("dag_id", "dag_run_id", "state", "run_type", "logical_date", "start", "end")


def cmd_dags_list_runs(args: argparse.Namespace, ctx: CliContext) -> int:
    params: dict[str, Any] = {"order_by": "-run_after", "limit": args.limit}
    if args.state:
        params["state"] = args.state
    with ctx.api_client() as api:
        runs = api.get_json(f"{_dag_path(args.dag_id)}/dagRuns", params=params).get("dag_runs", [])
    output.emit(ctx.output, runs, lambda: (RUN_HEADERS, run_rows(runs)))
    return 0


# ---------------------------------------------------------------------------- runs
def cmd_runs_history(args: argparse.Namespace, ctx: CliContext) -> int:
    with ctx.api_client() as api:
        body = api.get_json(
            f"{_run_path(args.dag_id, args.run_id)}/events", params={"limit": args.limit}
        )
    events = body.get("events", [])
    output.emit(
        ctx.output,
        events,
        lambda: (
            ("seq", "time", "type", "user", "source"),
            [
                (e.get("sequence"), e.get("time"), e.get("type"), e.get("user"), e.get("source"))
                for e in events
            ],
        ),
    )
    return 0


# ---------------------------------------------------------------------------- tasks
def cmd_tasks_list(args: argparse.Namespace, ctx: CliContext) -> int:
    with ctx.api_client() as api:
        tasks = api.get_json(f"{_dag_path(args.dag_id)}/tasks").get("tasks", [])
    output.emit(
        ctx.output, tasks, lambda: (("task_id", "operator", "downstream"), _task_rows(tasks))
    )
    return 0


def cmd_tasks_state(args: argparse.Namespace, ctx: CliContext) -> int:
    path = f"{_run_path(args.dag_id, args.run_id)}/taskInstances/{_q(args.task_id)}"
    if args.map_index != -1:
        path += f"/{args.map_index}"
    with ctx.api_client() as api:
        ti = api.get_json(path)
    if ctx.output == "table":
        print(ti.get("state") or "none")
    else:
        output.emit(ctx.output, ti)
    return 0


def _clear_body(args: argparse.Namespace, *, dry_run: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "dry_run": dry_run,
        "only_failed": args.only_failed,
        "only_running": args.only_running,
        "include_upstream": args.upstream,
        "include_downstream": args.downstream,
    }
    if args.run_id:
        body["dag_run_id"] = args.run_id
    if args.task_id:
        body["task_ids"] = args.task_id
    if args.start_date:
        body["start_date"] = args.start_date
    if args.end_date:
        body["end_date"] = args.end_date
    return body


def _ti_rows(tis: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (
            t.get("dag_run_id"),
            t.get("task_id")
            if t.get("map_index", -1) == -1
            else f"{t['task_id']}[{t['map_index']}]",
            t.get("state"),
            t.get("try_number"),
        )
        for t in tis
    ]


def cmd_tasks_clear(args: argparse.Namespace, ctx: CliContext) -> int:
    path = f"{_dag_path(args.dag_id)}/clearTaskInstances"
    with ctx.api_client() as api:
        preview = api.request("POST", path, json=_clear_body(args, dry_run=True)).json()
        tis = preview.get("task_instances", [])
        headers = ("dag_run_id", "task", "state", "try")
        if args.dry_run or not tis:
            output.emit(ctx.output, tis, lambda: (headers, _ti_rows(tis)))
            if not tis:
                print("nothing to clear", file=sys.stderr)
            return 0
        if not args.yes:
            sys.stdout.write(output.format_table(headers, _ti_rows(tis)))
        _confirm(f"Clear these {len(tis)} task instance(s)?", args.yes)
        done = api.request("POST", path, json=_clear_body(args, dry_run=False)).json()
    cleared = done.get("task_instances", [])
    output.emit(ctx.output, cleared, lambda: (headers, _ti_rows(cleared)))
    return 0


# ---------------------------------------------------------------------------- version
def cli_version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("ledgerflow")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0+unknown"


def cmd_version(args: argparse.Namespace, ctx: CliContext) -> int:
    info: dict[str, Any] = {"cli": cli_version()}
    if not args.local:
        with ctx.api_client() as api:
            response = api._send("GET", "/api/v2/version")  # public: no login needed
            if response.status_code != 200:
                raise CliError(f"the API answered {response.status_code} to GET /api/v2/version")
            body = response.json()
        info["api"] = body.get("version")
        info["api_git_version"] = body.get("git_version")
        info["api_url"] = api.base_url
    output.emit(ctx.output, info)
    return 0
