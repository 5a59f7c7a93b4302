"""Client commands: talk to the API the way a user's script would.

Output conventions: the result goes to stdout (tables, or JSON with ``--json``);
progress and diagnostics go to stderr, so ``RUN=$(ledgerflow dags trigger d)`` works.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ledgerflow.cli import output
from ledgerflow.cli.api_client import ApiClient
from ledgerflow.cli.context import CliContext
from ledgerflow.cli.errors import CliError

FINAL_RUN_STATES = frozenset({"success", "failed"})
EXIT_RUN_FAILED = 1
EXIT_WAIT_TIMEOUT = 124  # like timeout(1)


def _q(segment: str) -> str:
    """Quote one path segment (run ids contain ':' and '+')."""
    return quote(segment, safe="")


def _dag_path(dag_id: str) -> str:
    return f"/api/v2/dags/{_q(dag_id)}"


def _run_path(dag_id: str, run_id: str) -> str:
    return f"{_dag_path(dag_id)}/dagRuns/{_q(run_id)}"


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return (
            ",".join(str(v.get("name", v)) if isinstance(v, dict) else str(v) for v in value) or "-"
        )
    return str(value)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Left-aligned columns separated by two spaces, like ``docker ps``."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = [headers, *cells]
    for line in lines:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


# ---------------------------------------------------------------------------- dags

# Template files sent along with a DAG file (ADR 0006): these suffixes, in the DAG
# file's directory and up to two levels of subdirectories below it.
TEMPLATE_SUFFIXES = frozenset(
    {".sql", ".sh", ".bash", ".hql", ".json", ".yaml", ".yml", ".j2", ".jinja2", ".txt", ".md"}
)
TEMPLATE_SEARCH_DEPTH = 2
TEMPLATE_FILES_MAX_BYTES = 1024 * 1024  # the API's limit for one submission
_SKIPPED_DIRS = frozenset({"__pycache__", "node_modules", "venv"})


def template_files_near(dag_file: Path, *, depth: int = TEMPLATE_SEARCH_DEPTH) -> dict[str, str]:
    """Template files next to ``dag_file``, keyed by their path relative to its
    directory (``sql/load.sql``). Hidden entries, ``__pycache__``-like directories and
    symlinked directories are skipped; so are files that are not UTF-8 text (with a
    warning on stderr)."""
    root = dag_file.parent
    found: dict[str, str] = {}

    def walk(folder: Path, level: int) -> None:
        try:
            entries = sorted(folder.iterdir())
        except OSError:
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                if level < depth and not entry.is_symlink() and entry.name not in _SKIPPED_DIRS:
                    walk(entry, level + 1)
            elif entry.suffix.lower() in TEMPLATE_SUFFIXES and entry.is_file():
                relpath = entry.relative_to(root).as_posix()
                try:
                    found[relpath] = entry.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError) as exc:
                    print(
                        f"{relpath}: not sent (cannot read it as UTF-8 text: {exc})",
                        file=sys.stderr,
                    )

    walk(root, 0)
    return found


def cmd_dags_submit(args: argparse.Namespace, ctx: CliContext) -> int:
    """POST each file to /api/v2/dagFiles, with the template files next to it unless
    ``--no-extra-files``; print parse errors as ``FILE:LINE: message``."""
    failed = 0
    with ctx.api_client() as api:
        for name in args.files:
            path = Path(name)
            try:
                content = path.read_text(encoding="utf-8")
            except OSError as exc:
                print(f"{name}: cannot read: {exc.strerror or exc}", file=sys.stderr)
                failed += 1
                continue
            body: dict[str, Any] = {"filename": path.name, "content": content}
            if not getattr(args, "no_extra_files", False):
                extra = template_files_near(path)
                size = sum(len(text.encode()) for text in extra.values())
                if size > TEMPLATE_FILES_MAX_BYTES:
                    print(
                        f"{name}: the template files next to it are {size} bytes together; "
                        f"the limit is {TEMPLATE_FILES_MAX_BYTES} (move unrelated files "
                        "away or use --no-extra-files)",
                        file=sys.stderr,
                    )
                    failed += 1
                    continue
                if extra:
                    body["extra_files"] = extra
                    print(f"{name}: with template files {', '.join(extra)}", file=sys.stderr)
            response = api.request("POST", "/api/v2/dagFiles", json=body, accept=(422,))
            if response.status_code == 422:
                failed += 1
                print(_parse_error_line(name, response.json()), file=sys.stderr)
                continue
            for dag in response.json().get("dags", []):
                print(f"{name}: {dag.get('dag_id')} (version {dag.get('version_id')})")
    return 1 if failed else 0


def _parse_error_line(name: str, body: Any) -> str:
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list) and detail and all(isinstance(d, dict) for d in detail):
        # A request validation error (e.g. a template file path the API refused).
        return "; ".join(
            f"{name}: {'.'.join(str(p) for p in d.get('loc', ()) if p != 'body')}: {d.get('msg')}"
            for d in detail
        )
    if not isinstance(detail, dict):
        return f"{name}: rejected: {json.dumps(detail if detail is not None else body)}"
    message = detail.get("message") or "rejected"
    kind = detail.get("kind")
    suffix = f" [{kind}]" if kind else ""
    lineno = detail.get("lineno")
    where = f"{name}:{lineno}" if lineno else name
    return f"{where}: {message}{suffix}"


def cmd_dags_list(args: argparse.Namespace, ctx: CliContext) -> int:
    with ctx.api_client() as api:
        body = api.get_json("/api/v2/dags")
    dags = body.get("dags", [])
    if args.json or ctx.output != "table":
        output.emit("json" if args.json else ctx.output, dags)
        return 0
    if not dags:
        print("no DAGs yet: submit one with `ledgerflow dags submit FILE`", file=sys.stderr)
        return 0
    print_table(
        ("dag_id", "paused", "owners", "tags", "version", "file"),
        [
            (
                d.get("dag_id"),
                d.get("is_paused"),
                d.get("owners"),
                d.get("tags"),
                d.get("latest_version_id"),
                d.get("fileloc"),
            )
            for d in dags
        ],
    )
    return 0


def _set_paused(ctx: CliContext, dag_id: str, paused: bool) -> int:
    with ctx.api_client() as api:
        api.request("PATCH", _dag_path(dag_id), json={"is_paused": paused})
    print(f"{dag_id}: {'paused' if paused else 'unpaused'}")
    return 0


def cmd_dags_pause(args: argparse.Namespace, ctx: CliContext) -> int:
    return _set_paused(ctx, args.dag_id, True)


def cmd_dags_unpause(args: argparse.Namespace, ctx: CliContext) -> int:
    return _set_paused(ctx, args.dag_id, False)


def parse_conf(text: str | None) -> dict[str, Any]:
    """``--conf`` must be a JSON object (it becomes ``dag_run.conf``)."""
    if text is None:
        return {}
    try:
        conf = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"--conf is not valid JSON: {exc.msg} at position {exc.pos}") from exc
    if not isinstance(conf, dict):
        raise CliError('--conf must be a JSON object, like \'{"key": "value"}\'')
    return conf


def cmd_dags_trigger(args: argparse.Namespace, ctx: CliContext) -> int:
    """Trigger a run; print its id; with --wait follow it to success (0) or failure (1)."""
    conf = parse_conf(args.conf)
    logical_date = args.logical_date or datetime.now(UTC).isoformat()
    body: dict[str, Any] = {"conf": conf, "logical_date": logical_date}
    if args.run_id:
        body["dag_run_id"] = args.run_id
    with ctx.api_client() as api:
        run = api.request("POST", f"{_dag_path(args.dag_id)}/dagRuns", json=body).json()
        run_id = str(run["dag_run_id"])
        print(run_id, flush=True)
        if not args.wait:
            return 0
        return _wait_for_run(api, args.dag_id, run_id, timeout=args.timeout, interval=args.poll)


def _wait_for_run(
    api: ApiClient, dag_id: str, run_id: str, *, timeout: float, interval: float
) -> int:
    deadline = time.monotonic() + timeout
    seen: dict[tuple[str, int], tuple[Any, Any]] = {}
    last_state: str | None = None
    while True:
        response = api.request("GET", _run_path(dag_id, run_id), accept=(404,))
        # 404 right after triggering just means the projection has not caught up yet.
        state = None if response.status_code == 404 else response.json().get("state")
        if state is not None:
            tasks = api.request("GET", f"{_run_path(dag_id, run_id)}/taskInstances").json()
            for ti in tasks.get("task_instances", []):
                key = (
                    str(ti.get("task_id")),
                    int(ti.get("map_index", -1) if ti.get("map_index") is not None else -1),
                )
                now = (ti.get("state"), ti.get("try_number"))
                if seen.get(key) != now and now[0] is not None:
                    seen[key] = now
                    label = key[0] if key[1] < 0 else f"{key[0]}[{key[1]}]"
                    print(f"  {label}: {now[0]} (try {now[1]})", file=sys.stderr, flush=True)
            if state != last_state:
                last_state = state
                print(f"run {run_id}: {state}", file=sys.stderr, flush=True)
            if state in FINAL_RUN_STATES:
                return 0 if state == "success" else EXIT_RUN_FAILED
        if time.monotonic() >= deadline:
            raise CliError(
                f"timed out after {timeout:g}s waiting for run {run_id} "
                f"(last state: {last_state or 'not visible yet'})",
                exit_code=EXIT_WAIT_TIMEOUT,
            )
        time.sleep(interval)


# ---------------------------------------------------------------------------- runs


def _task_rows(task_instances: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (
            ti.get("task_id")
            if ti.get("map_index", -1) in (-1, None)
            else f"{ti.get('task_id')}[{ti.get('map_index')}]",
            ti.get("state"),
            ti.get("try_number"),
            ti.get("start_date"),
            ti.get("end_date"),
            f"{ti['duration']:.3f}s" if isinstance(ti.get("duration"), int | float) else None,
        )
        for ti in task_instances
    ]


def cmd_runs_show(args: argparse.Namespace, ctx: CliContext) -> int:
    with ctx.api_client() as api:
        run = api.get_json(_run_path(args.dag_id, args.run_id))
        tasks = api.get_json(f"{_run_path(args.dag_id, args.run_id)}/taskInstances")
    task_instances = tasks.get("task_instances", [])
    if args.json or ctx.output != "table":
        output.emit(
            "json" if args.json else ctx.output, {"dag_run": run, "task_instances": task_instances}
        )
        return 0
    for key in (
        "dag_id",
        "dag_run_id",
        "state",
        "run_type",
        "logical_date",
        "queued_at",
        "start_date",
        "end_date",
        "dag_version_id",
    ):
        print(f"{key + ':':<16}{_cell(run.get(key))}")
    if run.get("conf"):
        print(f"{'conf:':<16}{json.dumps(run['conf'])}")
    print()
    if task_instances:
        print_table(
            ("task", "state", "try", "start", "end", "duration"), _task_rows(task_instances)
        )
    else:
        print("(no task instances yet)")
    return 0


def cmd_runs_list(args: argparse.Namespace, ctx: CliContext) -> int:
    with ctx.api_client() as api:
        runs = api.get_json(f"{_dag_path(args.dag_id)}/dagRuns").get("dag_runs", [])
    if args.json or ctx.output != "table":
        output.emit("json" if args.json else ctx.output, runs)
        return 0
    print_table(
        ("dag_run_id", "state", "run_type", "logical_date", "start", "end"),
        [
            (
                r.get("dag_run_id"),
                r.get("state"),
                r.get("run_type"),
                r.get("logical_date"),
                r.get("start_date"),
                r.get("end_date"),
            )
            for r in runs
        ],
    )
    return 0


# ---------------------------------------------------------------------------- tasks


def cmd_tasks_logs(args: argparse.Namespace, ctx: CliContext) -> int:
    """Print a task attempt's log lines (the latest attempt unless --try is given)."""
    run_path = _run_path(args.dag_id, args.run_id)
    with ctx.api_client() as api:
        try_number = args.try_number
        if try_number is None:
            tis = api.get_json(f"{run_path}/taskInstances").get("task_instances", [])
            matches = [
                ti
                for ti in tis
                if ti.get("task_id") == args.task_id
                and (ti.get("map_index") in (None, args.map_index))
            ]
            if not matches:
                raise CliError(f"not found: task {args.task_id!r} in run {args.run_id!r}")
            try_number = int(matches[0].get("try_number") or 0)
            if try_number < 1:
                raise CliError(f"task {args.task_id!r} has not started yet (no attempt to show)")
        path = f"{run_path}/taskInstances/{_q(args.task_id)}/logs/{try_number}"
        params: dict[str, Any] = {}
        if args.map_index != -1:
            params["map_index"] = args.map_index
        seen_tokens: set[str] = set()
        while True:
            body = api.get_json(path, params=params or None)
            for line in body.get("content", []):
                _print_log_line(line, timestamps=args.timestamps)
            token = body.get("continuation_token")
            if not token or token in seen_tokens:
                break
            seen_tokens.add(token)
            params["token"] = token
    return 0


def _print_log_line(line: Any, *, timestamps: bool) -> None:
    if not isinstance(line, dict):
        print(line)
        return
    text = str(line.get("event", ""))
    if timestamps and line.get("timestamp"):
        text = f"{line['timestamp']} {text}"
    print(text)
