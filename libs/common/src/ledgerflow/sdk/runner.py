"""``python -m ledgerflow.sdk.runner``: run one task attempt.

stdin: one JSON object ``{"source", "filename", "dag_id", "task_id", "run_id", "map_index",
"try_number", "conf", "logical_date", "upstream_xcoms": {task_id: value}}``.

The task's output (stdout, stderr, Python logging on stderr) is the task log. The
outcome is exactly one JSON line written to file descriptor 3 (``--outcome-fd N`` picks
another)::

    {"status": "success", "return_value": ...}
    {"status": "failed", "error": "ValueError: ...", "error_type": "ValueError", "retryable": true}

If the process dies before writing it, the executor fails the attempt from the exit
code. This module imports as little as it can: a task's start-up time is on every hop.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from typing import Any

OUTCOME_FD = 3


class _OutcomeError(Exception):
    """A failure decided by the runner itself (not raised by the task)."""

    def __init__(self, message: str, error_type: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.message = message
        self.error_type = error_type
        self.retryable = retryable


def _failed(error: str, error_type: str, retryable: bool) -> dict[str, Any]:
    return {"status": "failed", "error": error, "error_type": error_type, "retryable": retryable}


def execute_request(request: dict[str, Any]) -> dict[str, Any]:
    """Run the attempt described by ``request`` in this process; return the outcome dict.

    Exceptions from the task are printed to stderr (the task log) and become a failed
    outcome. Usable without a subprocess by a pre-forked worker.
    """
    try:
        return _execute(request)
    except _OutcomeError as e:
        print(f"ERROR - {e.message}", file=sys.stderr)
        return _failed(e.message, e.error_type, e.retryable)
    except BaseException as e:
        if isinstance(e, KeyboardInterrupt):
            raise
        traceback.print_exc()
        retryable = bool(getattr(e, "retryable", True))
        return _failed(f"{type(e).__name__}: {e}", type(e).__name__, retryable)


def _execute(request: dict[str, Any]) -> dict[str, Any]:
    from datetime import datetime

    from ledgerflow.sdk.context import _current, build_context
    from ledgerflow.sdk.exceptions import AirflowTaskTimeout
    from ledgerflow.sdk.loader import DagFileError, load_dags

    filename = request["filename"]
    dag_id, task_id = request["dag_id"], request["task_id"]
    try:
        dags = load_dags(request["source"], filename, validate=False)
    except DagFileError as e:
        raise _OutcomeError(
            f"DAG file failed to load: {e}", "DagFileError", retryable=e.kind == "import"
        ) from None
    dag = next((d for d in dags if d.dag_id == dag_id), None)
    if dag is None:
        raise _OutcomeError(
            f"DAG {dag_id!r} not found in {filename}", "DagNotFound", retryable=False
        )
    task = dag.task_dict.get(task_id)
    if task is None:
        raise _OutcomeError(
            f"task {task_id!r} not found in DAG {dag_id!r}", "TaskNotFound", retryable=False
        )

    raw_date = request.get("logical_date")
    logical_date = datetime.fromisoformat(raw_date) if raw_date else None
    context = build_context(
        dag=dag,
        task=task,
        run_id=request.get("run_id") or "manual",
        try_number=int(request.get("try_number") or 1),
        map_index=-1 if request.get("map_index") is None else int(request["map_index"]),
        logical_date=logical_date,
        conf=dict(request.get("conf") or {}),
        upstream_xcoms=request.get("upstream_xcoms") or {},
    )

    timeout = task.execution_timeout_seconds
    if timeout:

        def on_timeout(signum: int, frame: object) -> None:
            raise AirflowTaskTimeout(f"task exceeded its execution_timeout of {timeout:g}s")

        signal.signal(signal.SIGALRM, on_timeout)
        signal.setitimer(signal.ITIMER_REAL, timeout)
    _current.append(context)
    try:
        task.render_template_fields(context)
        result = task.execute(context)
    finally:
        _current.pop()
        if timeout:
            signal.setitimer(signal.ITIMER_REAL, 0)

    if not task.do_xcom_push:
        result = None
    try:
        # Strict JSON: NaN and Infinity are not JSON, and other readers would choke.
        json.dumps(result, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise _OutcomeError(
            f"the return value of task {task_id!r} is not JSON-serializable "
            f"({type(result).__name__}: {e}); return plain data "
            "(dict, list, str, int, float, bool, None)",
            "XComSerializationError",
            retryable=False,
        ) from None
    return {"status": "success", "return_value": result}


def _open_outcome(fd: int) -> Any:
    """Take over the outcome descriptor so that user code and its children cannot touch it:
    duplicate it (non-inheritable) and close the original."""
    try:
        private = os.dup(fd)
    except OSError:
        print(f"runner: fd {fd} is not open; writing the outcome to stdout", file=sys.stderr)
        return None
    os.close(fd)
    return os.fdopen(private, "w", encoding="utf-8")


def _on_sigterm(signum: int, frame: object) -> None:
    from ledgerflow.sdk.exceptions import AirflowTaskTerminated

    raise AirflowTaskTerminated("task received SIGTERM")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    fd = OUTCOME_FD
    if len(args) == 2 and args[0] == "--outcome-fd":
        fd = int(args[1])
    elif args:
        print(
            "usage: python -m ledgerflow.sdk.runner [--outcome-fd N] < request.json",
            file=sys.stderr,
        )
        return 2
    outcome_file = _open_outcome(fd)

    import logging

    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s - %(message)s",
    )
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    signal.signal(signal.SIGTERM, _on_sigterm)

    try:
        request = json.loads(sys.stdin.read())
        if not isinstance(request, dict):
            raise ValueError("the request must be a JSON object")
    except ValueError as e:
        outcome = _failed(f"bad runner request: {e}", "BadRequest", False)
    else:
        outcome = execute_request(request)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the task is over; do not raise mid-write

    sys.stdout.flush()
    sys.stderr.flush()
    line = json.dumps(outcome) + "\n"
    if outcome_file is None:
        sys.__stdout__.write(line)  # type: ignore[union-attr]
        sys.__stdout__.flush()  # type: ignore[union-attr]
    else:
        outcome_file.write(line)
        outcome_file.close()
    return 0 if outcome["status"] == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
