"""The standard operators: ``PythonOperator`` and ``BashOperator``."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from ledgerflow.sdk.baseoperator import BaseOperator, XComArg
from ledgerflow.sdk.exceptions import AirflowException, AirflowTaskTerminated


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
    """Call a Python function; its return value is the task's XCom."""

    template_fields: ClassVar[Sequence[str]] = ("op_args", "op_kwargs")

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Sequence[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not callable(python_callable):
            raise TypeError(f"python_callable must be callable, got {python_callable!r}")
        self.python_callable = python_callable
        self.op_args = list(op_args or ())
        self.op_kwargs = dict(op_kwargs or {})
        super().__init__(**kwargs)

    def execute(self, context: dict[str, Any]) -> Any:
        kwargs = context_kwargs(self.python_callable, self.op_args, self.op_kwargs, context)
        return self.python_callable(*self.op_args, **kwargs)

    def display_fields(self) -> dict[str, Any]:
        return {"python_callable": callable_name(self.python_callable)}


class BashOperator(BaseOperator):
    """Run a bash command.

    Output (stdout and stderr together) is streamed line by line to the task's stdout; the
    last line is the task's XCom. A non-zero exit code fails the task. ``env`` replaces
    the environment unless ``append_env`` is true (as in Airflow).
    """

    template_fields: ClassVar[Sequence[str]] = ("bash_command", "env", "cwd")

    def __init__(
        self,
        *,
        bash_command: str | XComArg,
        env: Mapping[str, str] | None = None,
        append_env: bool = False,
        cwd: str | None = None,
        output_encoding: str = "utf-8",
        **kwargs: Any,
    ) -> None:
        if not isinstance(bash_command, str | XComArg):
            raise TypeError(f"bash_command must be a string, got {bash_command!r}")
        self.bash_command = bash_command
        self.env = env
        self.append_env = append_env
        self.cwd = cwd
        self.output_encoding = output_encoding
        super().__init__(**kwargs)

    def display_fields(self) -> dict[str, Any]:
        return {"bash_command": str(self.bash_command)}

    def _environment(self, context: Mapping[str, Any]) -> dict[str, str]:
        if self.env is None:
            env = dict(os.environ)
        elif self.append_env:
            env = {**os.environ, **self.env}
        else:
            env = dict(self.env)
        # Airflow's names, so scripts written for it keep working.
        ti = context.get("ti")
        for key, value in (
            ("AIRFLOW_CTX_DAG_ID", getattr(ti, "dag_id", None)),
            ("AIRFLOW_CTX_TASK_ID", self.task_id),
            ("AIRFLOW_CTX_DAG_RUN_ID", context.get("run_id")),
            ("AIRFLOW_CTX_TRY_NUMBER", context.get("try_number")),
            ("AIRFLOW_CTX_LOGICAL_DATE", context.get("ts")),
        ):
            if value is not None:
                env[key] = str(value)
        return env

    def execute(self, context: dict[str, Any]) -> str:
        import signal
        import subprocess

        command = self.bash_command
        if not isinstance(command, str):
            raise TypeError(f"bash_command resolved to {command!r}, not a string")
        if self.cwd is not None and not os.path.isdir(self.cwd):
            raise AirflowException(f"cwd {self.cwd!r} does not exist or is not a directory")
        sys.stdout.flush()
        proc = subprocess.Popen(
            ["bash", "-c", command],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=self.cwd,
            env=self._environment(context),
            start_new_session=True,  # so the whole process group can be stopped
        )
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
        if returncode == 99:
            raise AirflowException(
                "Bash command returned exit code 99 (skipping is not supported yet; "
                "the task fails instead)."
            )
        if returncode != 0:
            raise AirflowException(
                f"Bash command failed. The command returned a non-zero exit code {returncode}."
            )
        return last_line
