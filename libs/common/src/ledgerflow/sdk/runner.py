"""``python -m ledgerflow.sdk.runner``: run one task attempt (ADR 0006, "The runner protocol").

stdin: one JSON object::

    {"source", "filename", "extra_files": {relpath: text}, "dag_id", "task_id", "run_id",
     "map_index", "try_number", "max_tries" (retries + 1), "conf", "logical_date",
     "data_interval_start", "data_interval_end", "run_type",
     "xcoms": [{"task_id", "map_index", "key", "value"}], "variables": {key: value},
     "connections": {conn_id: {conn_type, host, schema, login, password, port, extra}},
     "xcom_max_bytes", "test_mode" (optional), "api_url", "api_token" (optional: how
     the task reads other runs' states, e.g. for ExternalTaskSensor), "traceparent"
     (optional: the executor's span, see :mod:`ledgerflow.sdk.tracing`),
     "triggering_asset_events": [event], "inlet_events": {asset name: [event]} (optional,
     ADR 0013)}

(``upstream_xcoms: {task_id: return_value}``, the form before ADR 0006, is still read.)

The task's output (stdout, stderr, Python logging on stderr) is the task log. The
outcome is exactly one JSON line written to file descriptor 3 (``--outcome-fd N`` picks
another)::

    {"status": "success", "return_value": V, "xcoms": {key: V}, "follow_task_ids": [..]|null,
     "short_circuit": null|"direct"|"all", "rendered_fields": {..},
     "asset_events": [{name, uri, group, extra, source_aliases}] (only when the task has
     asset outlets, ADR 0013)}
    {"status": "skipped", "reason": "...", "rendered_fields": {..}}
    {"status": "rescheduled", "reschedule_date": "2024-01-01T00:05:00+00:00"}
    {"status": "failed", "error": "...", "error_type": "...", "retryable": bool,
     "rendered_fields": {..}}

An attempt runs as in Airflow 3's task runner: load the DAG, expand a mapped task to the
request's map index, render the template fields, export ``AIRFLOW_CTX_*``,
``pre_execute``, ``on_execute_callback``, ``execute`` (under ``execution_timeout``),
``post_execute``, collect the XComs, then ``on_success_callback`` /
``on_skipped_callback`` / ``on_retry_callback`` (the failure will be retried: it is
retryable and ``try_number < max_tries``) / ``on_failure_callback``. A callback that
raises is logged, never fatal.

If the process dies before writing the outcome, the executor fails the attempt from the
exit code. This module imports as little as it can (a task's start-up is on every hop):
jinja2 in particular loads only when a template needs it.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from datetime import UTC, datetime
from typing import Any

from ledgerflow.sdk.runner_support import OutcomeError as _OutcomeError
from ledgerflow.sdk.runner_support import (
    int_field,
    make_private_dir,
    optional_str,
    parse_date,
    remove_tree,
)

OUTCOME_FD = 3
DEFAULT_XCOM_MAX_BYTES = 256 * 1024
_CALLBACK_FOR_STATUS = {
    "success": "on_success_callback",
    "skipped": "on_skipped_callback",
}


class _Never(BaseException):
    """Stands in for an exception class the SDK does not define (yet): never raised."""


def _sdk_exception(name: str) -> type[BaseException]:
    from ledgerflow.sdk import exceptions

    cls = getattr(exceptions, name, None)
    return cls if isinstance(cls, type) and issubclass(cls, BaseException) else _Never


def _failed(
    error: str, error_type: str, retryable: bool, rendered_fields: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "status": "failed",
        "error": error,
        "error_type": error_type,
        "retryable": retryable,
        "rendered_fields": rendered_fields or {},
    }


def _log(level: str, message: str) -> None:
    print(f"{level} - {message}", file=sys.stderr, flush=True)


def execute_request(request: dict[str, Any]) -> dict[str, Any]:
    """Run the attempt described by ``request`` in this process; return the outcome dict.

    Exceptions from the task are printed to stderr (the task log) and become a failed
    outcome. Used by ``main`` and, without a subprocess, by a pre-forked worker or
    ``ledgerflow dags test``: the process-wide state an attempt sets up (the DAG's
    temporary folder, variables and connections, ``AIRFLOW_CTX_*`` variables, signal
    handlers) is undone before it returns.
    """
    attempt = _Attempt(request)
    try:
        return attempt.run()
    finally:
        attempt.cleanup()


def write_dag_files(folder: str, request: dict[str, Any]) -> str:
    """Write the request's DAG file and extra files (relative paths kept) into
    ``folder``; return the DAG file's path. BadRequest for a malformed request."""
    extra_files = request.get("extra_files") or {}
    if not isinstance(extra_files, dict):
        raise _OutcomeError(
            "bad runner request: extra_files must be {relpath: text}",
            "BadRequest",
            retryable=False,
        )
    checked = {_safe_relpath(str(rel)): text for rel, text in extra_files.items()}
    for rel, text in checked.items():
        path = os.path.join(folder, *rel.split("/"))
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(str(text))
    dag_path = os.path.join(folder, os.path.basename(str(request.get("filename") or "dag.py")))
    with open(dag_path, "w", encoding="utf-8") as f:
        f.write(request["source"])
    return dag_path


def load_dag_file(source: str, dag_path: str) -> list[Any]:
    """Run the DAG file; a file that fails to load is the attempt's DagFileError."""
    from ledgerflow.sdk.loader import DagFileError, load_dags

    try:
        dags: list[Any] = load_dags(source, dag_path, validate=False)
    except DagFileError as e:
        raise _OutcomeError(
            f"DAG file failed to load: {e}", "DagFileError", retryable=e.kind == "import"
        ) from None
    return dags


def _dag_named(dags: dict[str, Any], dag_id: str, filename: str) -> Any:
    dag = dags.get(dag_id)
    if dag is None:
        raise _OutcomeError(
            f"DAG {dag_id!r} not found in {filename}", "DagNotFound", retryable=False
        )
    return dag


def _safe_relpath(relpath: str) -> str:
    """``relpath`` if it stays inside the folder it is relative to; else BadRequest."""
    parts = relpath.replace("\\", "/").split("/")
    if not relpath or relpath.startswith("/") or ".." in parts or os.path.isabs(relpath):
        raise _OutcomeError(
            f"bad runner request: extra file path {relpath!r} must be relative and stay "
            "inside the DAG's folder (no absolute paths, no '..')",
            "BadRequest",
            retryable=False,
        )
    return "/".join(p for p in parts if p not in ("", "."))


class _Attempt:
    """One attempt's state, so that :meth:`cleanup` can undo exactly what it set up."""

    def __init__(self, request: dict[str, Any]) -> None:
        self.request = request
        self.filename = str(request.get("filename") or "dag.py")
        self.folder: str | None = None
        self.dag_path: str | None = None
        self.module_name: str | None = None
        self.context: dict[str, Any] | None = None
        self.rendered: dict[str, Any] = {}
        self.configured_models = False
        self.saved_env: dict[str, str | None] = {}

    # -- outcome ------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        try:
            self.prepare()
        except _OutcomeError as e:
            message = self.display(e.message)
            _log("ERROR", message)
            return _failed(message, e.error_type, e.retryable)
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt):
                raise
            self.print_traceback(e)
            retryable = bool(getattr(e, "retryable", True))
            return _failed(self.display(f"{type(e).__name__}: {e}"), type(e).__name__, retryable)

        from ledgerflow.sdk.context import _current

        context = self.context
        assert context is not None
        _current.append(context)
        try:
            outcome, error = self.run_task(context)
            context["exception"] = error
            kind = _CALLBACK_FOR_STATUS.get(outcome["status"])
            if outcome["status"] == "failed":
                kind = "on_retry_callback" if self.will_retry(outcome) else "on_failure_callback"
            if kind is not None:
                self.run_callbacks(kind, context)
        finally:
            _current.pop()
        return outcome

    def will_retry(self, outcome: dict[str, Any]) -> bool:
        assert self.context is not None
        ti = self.context["ti"]
        return bool(outcome["retryable"]) and ti.try_number < ti.max_tries + 1

    # -- set-up ---------------------------------------------------------------------------
    def prepare(self) -> None:
        from ledgerflow.sdk.context import build_context

        request = self.request
        for key in ("source", "dag_id", "task_id"):
            if not isinstance(request.get(key), str):
                raise _OutcomeError(
                    f"bad runner request: {key} must be a string", "BadRequest", retryable=False
                )
        dag_id, task_id = request["dag_id"], request["task_id"]
        map_index = int_field(request, "map_index", -1)
        try_number = int_field(request, "try_number", 1)
        logical_date = parse_date(request, "logical_date")
        interval_start = parse_date(request, "data_interval_start")
        interval_end = parse_date(request, "data_interval_end")
        xcoms = request.get("xcoms") or []
        if not isinstance(xcoms, list) or not all(
            isinstance(x, dict) and "task_id" in x for x in xcoms
        ):
            raise _OutcomeError(
                "bad runner request: xcoms must be a list of {task_id, map_index, key, value}",
                "BadRequest",
                retryable=False,
            )

        variables, connections = request.get("variables"), request.get("connections")
        if variables or connections:
            from ledgerflow.sdk import models

            models.configure(variables, connections)
            self.configured_models = True

        _install_airflow_compat()
        dag = self.load_dag(dag_id)
        task = dag.task_dict.get(task_id)
        if task is None:
            raise _OutcomeError(
                f"task {task_id!r} not found in DAG {dag_id!r}", "TaskNotFound", retryable=False
            )
        max_tries = request.get("max_tries")
        self.context = build_context(
            dag=dag,
            task=task,
            run_id=str(request.get("run_id") or "manual"),
            try_number=try_number,
            map_index=map_index,
            logical_date=logical_date,
            conf=dict(request.get("conf") or {}),
            upstream_xcoms=request.get("upstream_xcoms") or {},
            xcoms=xcoms,
            max_tries=None if max_tries is None else int_field(request, "max_tries", 1),
            run_type=str(request.get("run_type") or "manual"),
            data_interval_start=interval_start,
            data_interval_end=interval_end,
            test_mode=bool(request.get("test_mode", False)),
            api_url=optional_str(request, "api_url"),
            api_token=optional_str(request, "api_token"),
        )
        from ledgerflow.sdk.asset_runtime import install

        install(self.context, request)  # outlet_events, triggering_asset_events (ADR 0013)

    def load_dag(self, dag_id: str) -> Any:
        """Write the DAG file and its extra files into a private folder (relative paths
        kept) and load the DAG from there, so that template files, ``__file__`` and
        sibling modules resolve as they did next to the DAG file. In a child of a warm
        zygote (ADR 0017) the file was loaded once already, from this very request's
        file, variables and connections: that load is used."""
        from ledgerflow.sdk import warm
        from ledgerflow.sdk.loader import module_name_for

        preloaded = warm.preloaded(self.request)
        if preloaded is not None:
            return _dag_named(preloaded.dags, dag_id, self.filename)
        self.folder = make_private_dir()
        self.dag_path = write_dag_files(self.folder, self.request)
        self.module_name = module_name_for(self.dag_path)
        dags = load_dag_file(self.request["source"], self.dag_path)
        return _dag_named({d.dag_id: d for d in dags}, dag_id, self.filename)

    # -- the task -------------------------------------------------------------------------
    def run_task(self, context: dict[str, Any]) -> tuple[dict[str, Any], BaseException | None]:
        skip_exc = _sdk_exception("AirflowSkipException")
        reschedule_exc = _sdk_exception("AirflowRescheduleException")
        no_retry = (_sdk_exception("AirflowFailException"), _sdk_exception("AirflowSensorTimeout"))
        try:
            self.unmap(context)
            self.render(context)
            result = self.execute(context)
            return self.success(context, result), None
        except skip_exc as e:
            reason = str(e) or "the task raised AirflowSkipException"
            _log("INFO", f"Skipping task: {reason}")
            return {"status": "skipped", "reason": reason, "rendered_fields": self.rendered}, e
        except reschedule_exc as e:
            when = getattr(e, "reschedule_date", None)
            if not isinstance(when, datetime):
                _log("ERROR", f"AirflowRescheduleException without a reschedule_date: {when!r}")
                return _failed(
                    f"AirflowRescheduleException needs a datetime reschedule_date, got {when!r}",
                    "AirflowRescheduleException",
                    False,
                    self.rendered,
                ), e
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            _log("INFO", f"Rescheduling task to {when.isoformat()}")
            return {"status": "rescheduled", "reschedule_date": when.isoformat()}, e
        except _OutcomeError as e:
            _log("ERROR", self.display(e.message))
            return _failed(self.display(e.message), e.error_type, e.retryable, self.rendered), e
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt):
                raise
            from ledgerflow.sdk.templating import TemplateRenderError

            if isinstance(e, TemplateRenderError):
                _log("ERROR", self.display(e.message))
                if not _is_jinja_error(e.__cause__):
                    self.print_traceback(e.__cause__ or e)
                return _failed(self.display(e.message), e.error_type, e.retryable, self.rendered), e
            self.print_traceback(e)
            retryable = False if isinstance(e, no_retry) else bool(getattr(e, "retryable", True))
            return _failed(
                self.display(f"{type(e).__name__}: {e}"), type(e).__name__, retryable, self.rendered
            ), e

    def unmap(self, context: dict[str, Any]) -> None:
        """A mapped task becomes the concrete operator of the request's map index."""
        from ledgerflow.sdk.context import set_task

        ti = context["ti"]
        task = ti.task
        if not getattr(task, "is_mapped", False):
            return
        if ti.map_index < 0:
            raise _OutcomeError(
                f"task {ti.task_id!r} is mapped; the request must name a map_index >= 0",
                "BadRequest",
                retryable=False,
            )
        try:
            from ledgerflow.sdk.mapping import unmap
        except ImportError as e:
            if e.name != "ledgerflow.sdk.mapping":
                raise
            raise _OutcomeError(
                f"task {ti.task_id!r} is mapped, but this SDK cannot expand mapped tasks "
                "(ledgerflow.sdk.mapping is missing)",
                "MappingUnavailable",
                retryable=False,
            ) from None
        set_task(context, unmap(task, ti.map_index, ti.resolve_xcom))

    def render(self, context: dict[str, Any]) -> None:
        task = context["ti"].task
        if not getattr(task, "template_fields", None):
            return
        from ledgerflow.sdk.templating import render_template_fields

        render_template_fields(task, context, self.rendered)

    def execute(self, context: dict[str, Any]) -> Any:
        task = context["ti"].task
        self.export_airflow_ctx(context)
        pre_execute = getattr(task, "pre_execute", None)
        if callable(pre_execute):
            pre_execute(context)
        self.run_callbacks("on_execute_callback", context)
        timeout = _timeout_seconds(task)
        timeout_exc = _sdk_exception("AirflowTaskTimeout")
        armed = _arm_timeout(timeout, timeout_exc) if timeout else False
        try:
            result = task.execute(context)
            from ledgerflow.sdk.asset_runtime import drain_metadata

            result = drain_metadata(result, context)  # a task that yields Metadata
        except timeout_exc:
            on_kill = getattr(task, "on_kill", None)
            if callable(on_kill):
                try:
                    on_kill()
                except Exception as e:
                    _log("WARNING", f"on_kill of task {task.task_id!r} raised {e!r}")
            raise
        finally:
            if armed:
                signal.setitimer(signal.ITIMER_REAL, 0)
        post_execute = getattr(task, "post_execute", None)
        if callable(post_execute):
            post_execute(context, result)
        return result

    def success(self, context: dict[str, Any], result: Any) -> dict[str, Any]:
        ti = context["ti"]
        task = ti.task
        task_id = ti.task_id
        if getattr(task, "do_xcom_push", True) and result is not None:
            if getattr(task, "multiple_outputs", False):
                if not isinstance(result, dict):
                    raise TypeError(
                        f"task {task_id!r} has multiple_outputs=True, so it must return a "
                        f"dict, not {type(result).__name__}"
                    )
                for key, value in result.items():
                    if not isinstance(key, str):
                        raise TypeError(
                            f"with multiple_outputs, the keys of the returned dict must be "
                            f"strings; {key!r} is a {type(key).__name__}"
                        )
                    ti.xcom_push(key, value)
            return_value = result
        else:
            return_value = ti.pushed.get("return_value")
        from ledgerflow.sdk.context import json_text

        try:
            # Round-tripped, so that in-process callers see what a subprocess reports.
            return_value = json.loads(json_text(return_value))
        except (TypeError, ValueError) as e:
            raise _OutcomeError(
                f"the return value of task {task_id!r} is not JSON-serializable "
                f"({type(return_value).__name__}: {e}); return plain data "
                "(dict, list, str, int, float, bool, None)",
                "XComSerializationError",
                retryable=False,
            ) from None
        xcoms = {k: v for k, v in ti.pushed.items() if k != "return_value"}
        everything = dict(xcoms)
        if return_value is not None:
            everything["return_value"] = return_value
        size = len(json.dumps(everything).encode()) if everything else 0
        limit = self.xcom_max_bytes()
        if size > limit:
            raise _OutcomeError(
                f"XCom of task {task_id} is {size} bytes, over the limit of {limit} bytes "
                "(LEDGERFLOW_XCOM_MAX_BYTES)",
                "XComTooLarge",
                retryable=False,
            )
        from ledgerflow.sdk.asset_runtime import collect

        asset_events = collect(getattr(task, "outlets", None), context["outlet_events"])
        return {
            "status": "success",
            "return_value": return_value,
            **({"asset_events": asset_events} if asset_events else {}),
            "xcoms": xcoms,
            "follow_task_ids": _follow_task_ids(ti.follow_task_ids),
            "short_circuit": _short_circuit(ti.short_circuit),
            "rendered_fields": self.rendered,
        }

    def xcom_max_bytes(self) -> int:
        raw = self.request.get("xcom_max_bytes") or os.environ.get("LEDGERFLOW_XCOM_MAX_BYTES")
        try:
            return int(raw) if raw else DEFAULT_XCOM_MAX_BYTES
        except ValueError:
            return DEFAULT_XCOM_MAX_BYTES

    def run_callbacks(self, kind: str, context: dict[str, Any]) -> None:
        callbacks = getattr(context["ti"].task, kind, None)
        if not callbacks:
            return
        if callable(callbacks):
            callbacks = [callbacks]
        for i, callback in enumerate(callbacks):
            try:
                callback(context)
            except Exception as e:
                _log("ERROR", f"{kind} #{i} ({_callable_name(callback)}) failed: {e!r}")
                self.print_traceback(e)

    def export_airflow_ctx(self, context: dict[str, Any]) -> None:
        """``AIRFLOW_CTX_*`` in the environment, as Airflow 3 sets them before execute."""
        ti = context["ti"]
        dag = context["dag"]
        values = {
            "AIRFLOW_CTX_DAG_ID": ti.dag_id,
            "AIRFLOW_CTX_TASK_ID": ti.task_id,
            "AIRFLOW_CTX_DAG_RUN_ID": ti.run_id,
            "AIRFLOW_CTX_TRY_NUMBER": str(ti.try_number),
            "AIRFLOW_CTX_LOGICAL_DATE": context.get("ts") or "",
            "AIRFLOW_CTX_DAG_OWNER": str(getattr(dag, "owner", "") or ""),
        }
        if ti.map_index >= 0:
            values["AIRFLOW_CTX_MAP_INDEX"] = str(ti.map_index)
        for key, value in values.items():
            self.saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    # -- display and clean-up ---------------------------------------------------------
    def display(self, text: str) -> str:
        """Text with the private folder replaced by the DAG file's own name."""
        if self.dag_path:
            text = text.replace(self.dag_path, self.filename)
        if self.folder:
            prefix = os.path.dirname(self.filename)
            text = text.replace(self.folder + os.sep, prefix + "/" if prefix else "")
            text = text.replace(self.folder, prefix or ".")
        return text

    def print_traceback(self, exc: BaseException) -> None:
        import traceback

        text = "".join(traceback.format_exception(exc))
        sys.stderr.write(self.display(text))
        sys.stderr.flush()

    def cleanup(self) -> None:
        for key, value in self.saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if self.configured_models:
            from ledgerflow.sdk import models

            models.reset()
        if self.module_name:
            sys.modules.pop(self.module_name, None)
        if self.folder:
            if self.folder in sys.path:
                sys.path.remove(self.folder)
            try:
                remove_tree(self.folder)
            except OSError as e:
                _log("WARNING", f"could not remove {self.folder}: {e}")


def _install_airflow_compat() -> None:
    """Map ``airflow.*`` imports onto the SDK before the DAG file runs (ADR 0006)."""
    import importlib

    try:
        compat = importlib.import_module("ledgerflow.sdk.compat")
    except ModuleNotFoundError as e:
        if e.name == "ledgerflow.sdk.compat":
            return  # an SDK without the shim: Airflow imports fail as they would anyway
        raise
    install = getattr(compat, "install", None)
    if callable(install):  # None while the shim is being written
        install()


def _timeout_seconds(task: Any) -> float | None:
    seconds = getattr(task, "execution_timeout_seconds", None)
    if seconds is None:
        timeout = getattr(task, "execution_timeout", None)
        if timeout is not None:
            seconds = timeout.total_seconds() if hasattr(timeout, "total_seconds") else timeout
    return float(seconds) if seconds else None


def _arm_timeout(seconds: float, exc_class: type[BaseException]) -> bool:
    """Raise ``exc_class`` in the main thread after ``seconds``; False when this is not
    the main thread (the executor's hard kill after timeout + grace still applies)."""

    def on_timeout(signum: int, frame: object) -> None:
        raise exc_class(f"task exceeded its execution_timeout of {seconds:g}s")

    try:
        signal.signal(signal.SIGALRM, on_timeout)
    except ValueError:
        _log("WARNING", "execution_timeout not enforced in-process: not the main thread")
        return False
    signal.setitimer(signal.ITIMER_REAL, seconds)
    return True


def _follow_task_ids(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    ids: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise _OutcomeError(
                f"follow_task_ids must be task ids (strings), got {item!r}",
                "InvalidBranch",
                retryable=False,
            )
        if item not in ids:
            ids.append(item)
    return ids


def _short_circuit(value: Any) -> str | None:
    if value in (None, "direct", "all"):
        return value  # type: ignore[no-any-return]
    raise _OutcomeError(
        f'short_circuit must be None, "direct" or "all", got {value!r}',
        "InvalidShortCircuit",
        retryable=False,
    )


def _callable_name(func: Any) -> str:
    return str(getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or func)


def _is_jinja_error(exc: BaseException | None) -> bool:
    jinja2 = sys.modules.get("jinja2")
    return exc is not None and jinja2 is not None and isinstance(exc, jinja2.TemplateError)


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
        if request.get("traceparent"):  # the executor traces: so does this process
            from ledgerflow.sdk.tracing import traced_execution

            outcome = traced_execution(request, execute_request)
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
    return 0 if outcome["status"] in ("success", "skipped", "rescheduled") else 1


if __name__ == "__main__":
    sys.exit(main())
