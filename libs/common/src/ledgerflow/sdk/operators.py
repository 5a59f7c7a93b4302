"""The standard operators: ``PythonOperator``, ``BashOperator`` and ``EmptyOperator``.

Branching operators are in :mod:`ledgerflow.sdk.branch`, sensors in
:mod:`ledgerflow.sdk.sensors`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Container, Mapping, Sequence
from typing import Any, ClassVar

from ledgerflow.sdk.baseoperator import BaseOperator
from ledgerflow.sdk.exceptions import AirflowException, AirflowSkipException, AirflowTaskTerminated
from ledgerflow.sdk.xcom_arg import ResolveMixin


def callable_name(func: Callable[..., Any]) -> str:
    """``module.qualname`` of a callable, for display."""
    module = getattr(func, "__module__", None) or ""
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)
    if module.startswith("unusual_prefix_"):
        # DAG files run as ``unusual_prefix_<digest>_<file stem>``; show the stem.
        module = module.split("_", 3)[-1]
    if not module:
        return str(name)
    return f"{module}.{name}"


def context_kwargs(
    func: Callable[..., Any],
    op_args: Sequence[Any],
    op_kwargs: Mapping[str, Any],
    context: Mapping[str, Any],
) -> dict[str, Any]:
    """The keyword arguments to call ``func`` with, as Airflow's PythonOperator does:
    ``op_kwargs``, plus every context key if ``func`` takes ``**kwargs``, or else the context
    keys it names as parameters (``def f(ti, ds): ...``)."""
    import inspect  # only when a task runs

    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return dict(op_kwargs)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return {**context, **op_kwargs}
    positional = [
        name
        for name, p in params.items()
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ][: len(op_args)]
    kwargs = dict(op_kwargs)
    for name, p in params.items():
        if (
            name in context
            and name not in kwargs
            and name not in positional
            and p.kind is not inspect.Parameter.POSITIONAL_ONLY
            and p.kind is not inspect.Parameter.VAR_POSITIONAL
        ):
            kwargs[name] = context[name]
    return kwargs


class PythonOperator(BaseOperator):
    """Call a Python function; its return value is the task's XCom.

    ``op_args``/``op_kwargs`` are passed to it, with the context keys it names (or all of
    them if it takes ``**kwargs``) and ``templates_dict`` (rendered) when it asks for it.
    """

    template_fields: ClassVar[Sequence[str]] = ("templates_dict", "op_args", "op_kwargs")
    template_fields_renderers: ClassVar[dict[str, str]] = {
        "templates_dict": "json",
        "op_args": "py",
        "op_kwargs": "py",
    }
    ui_color: ClassVar[str] = "#ffefeb"
    shallow_copy_attrs: ClassVar[Sequence[str]] = ("python_callable", "op_kwargs")

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Sequence[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        templates_dict: dict[str, Any] | None = None,
        templates_exts: Sequence[str] | None = None,
        show_return_value_in_logs: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("provide_context", None)  # Airflow 1's flag: the context is always given
        if not callable(python_callable):
            raise TypeError(f"python_callable must be callable, got {python_callable!r}")
        self.python_callable = python_callable
        self.op_args = list(op_args or ())
        self.op_kwargs = dict(op_kwargs or {})
        self.templates_dict = templates_dict
        if templates_exts:
            self.template_ext = tuple(templates_exts)  # type: ignore[misc]
        self.show_return_value_in_logs = show_return_value_in_logs
        super().__init__(**kwargs)

    def determine_kwargs(self, context: Mapping[str, Any]) -> dict[str, Any]:
        merged = {**context, "templates_dict": self.templates_dict}
        return context_kwargs(self.python_callable, self.op_args, self.op_kwargs, merged)

    def execute(self, context: dict[str, Any]) -> Any:
        kwargs = self.determine_kwargs(context)
        result = self.execute_callable(kwargs)
        if self.show_return_value_in_logs:
            self.log.info("Done. Returned value was: %s", result)
        else:
            self.log.info("Done. Returned value not shown")
        return result

    def execute_callable(self, kwargs: Mapping[str, Any] | None = None) -> Any:
        return self.python_callable(
            *self.op_args, **(kwargs if kwargs is not None else self.op_kwargs)
        )

    def display_fields(self) -> dict[str, Any]:
        return {"python_callable": callable_name(self.python_callable)}


class BashOperator(BaseOperator):
    """Run a bash command.

    Output (stdout and stderr together) is streamed line by line to the task's stdout; the
    last line is the task's XCom (passed through ``output_processor``). Exit code
    ``skip_on_exit_code`` (99 by default; an int, a collection or None) skips the task;
    any other non-zero code fails it. ``env`` replaces the environment unless
    ``append_env`` is true (as in Airflow). A ``bash_command`` ending in ``.sh`` or
    ``.bash`` is a template file, found through the DAG's ``template_searchpath``.
    """

    template_fields: ClassVar[Sequence[str]] = ("bash_command", "env", "cwd")
    template_fields_renderers: ClassVar[dict[str, str]] = {"bash_command": "bash", "env": "json"}
    template_ext: ClassVar[Sequence[str]] = (".sh", ".bash")
    ui_color: ClassVar[str] = "#f0ede4"

    def __init__(
        self,
        *,
        bash_command: str | Any,
        env: Mapping[str, str] | None = None,
        append_env: bool = False,
        output_encoding: str = "utf-8",
        skip_on_exit_code: int | Container[int] | None = 99,
        cwd: str | None = None,
        output_processor: Callable[[str], Any] = lambda result: result,
        **kwargs: Any,
    ) -> None:
        if not isinstance(bash_command, str | ResolveMixin):
            raise TypeError(f"bash_command must be a string, got {bash_command!r}")
        self.bash_command = bash_command
        self.env = env
        self.append_env = append_env
        self.output_encoding = output_encoding
        if skip_on_exit_code is None:
            self.skip_on_exit_code: Container[int] = ()
        elif isinstance(skip_on_exit_code, Container):
            self.skip_on_exit_code = skip_on_exit_code
        else:
            self.skip_on_exit_code = (skip_on_exit_code,)
        self.cwd = cwd
        self.output_processor = output_processor
        super().__init__(**kwargs)

    def display_fields(self) -> dict[str, Any]:
        return {"bash_command": str(self.bash_command)}

    def get_env(self, context: Mapping[str, Any]) -> dict[str, str]:
        """The command's environment, with Airflow's ``AIRFLOW_CTX_*`` variables."""
        if self.env is None:
            env = dict(os.environ)
        elif self.append_env:
            env = {**os.environ, **self.env}
        else:
            env = dict(self.env)
        ti = context.get("ti")
        dag_run = context.get("dag_run")
        for key, value in (
            ("AIRFLOW_CTX_DAG_OWNER", self.owner),
            ("AIRFLOW_CTX_DAG_ID", getattr(ti, "dag_id", None)),
            ("AIRFLOW_CTX_TASK_ID", self.task_id),
            ("AIRFLOW_CTX_DAG_RUN_ID", context.get("run_id")),
            ("AIRFLOW_CTX_TRY_NUMBER", context.get("try_number")),
            ("AIRFLOW_CTX_LOGICAL_DATE", context.get("ts")),
            ("AIRFLOW_CTX_DAG_RUN_TYPE", getattr(dag_run, "run_type", None)),
        ):
            if value is not None:
                env[key] = str(value)
        return env

    def execute(self, context: dict[str, Any]) -> Any:
        import signal
        import subprocess

        command = self.bash_command
        if not isinstance(command, str):
            raise TypeError(f"bash_command resolved to {command!r}, not a string")
        if self.cwd is not None:
            if not os.path.exists(self.cwd):
                raise AirflowException(f"Can not find the cwd: {self.cwd}")
            if not os.path.isdir(self.cwd):
                raise AirflowException(f"The cwd {self.cwd} must be a directory")
        sys.stdout.flush()
        proc = subprocess.Popen(
            ["bash", "-c", command],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=self.cwd,
            env=self.get_env(context),
            start_new_session=True,  # so the whole process group can be stopped
        )
        self._process = proc
        last_line = ""
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = raw.decode(self.output_encoding, errors="backslashreplace").rstrip()
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
                last_line = line
            returncode = proc.wait()
        except BaseException:
            # Timeout, SIGTERM or anything else: do not leave the command running.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            raise
        if returncode < 0:
            raise AirflowTaskTerminated(f"Bash command was killed by signal {-returncode}.")
        if returncode in self.skip_on_exit_code:
            raise AirflowSkipException(f"Bash command returned exit code {returncode}. Skipping.")
        if returncode != 0:
            raise AirflowException(
                f"Bash command failed. The command returned a non-zero exit code {returncode}."
            )
        return self.output_processor(last_line)

    def on_kill(self) -> None:
        import signal

        proc = getattr(self, "_process", None)
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


class EmptyOperator(BaseOperator):
    """Does nothing; useful to group dependencies (``start``, ``join``, ``end``)."""

    ui_color: ClassVar[str] = "#e8f7e4"
    inherits_from_empty_operator: ClassVar[bool] = True

    def execute(self, context: dict[str, Any]) -> None:
        pass


DummyOperator = EmptyOperator  # Airflow 1/2's name
