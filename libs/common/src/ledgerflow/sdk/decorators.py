"""TaskFlow: ``@task`` turns a function into a task factory."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, Generic, ParamSpec, TypeVar, overload

from ledgerflow.sdk.baseoperator import XComArg
from ledgerflow.sdk.dag_definition import current_dag
from ledgerflow.sdk.operators import PythonOperator

P = ParamSpec("P")
R = TypeVar("R")

_SUFFIX = re.compile(r"__\d+$")


class _PythonDecoratedOperator(PythonOperator):
    """The operator behind a ``@task`` function call."""

    custom_operator_name = "@task"


class Task(Generic[P, R]):
    """A ``@task``-decorated function. Calling it inside a DAG adds a task and returns its
    :class:`XComArg`; XComArgs among the arguments become upstreams and, at run time,
    their values."""

    def __init__(self, function: Callable[P, R], kwargs: dict[str, Any]) -> None:
        functools.update_wrapper(self, function)
        self.function = function
        self.kwargs = kwargs

    def __call__(self, *args: Any, **kwargs: Any) -> XComArg:
        task_kwargs = dict(self.kwargs)
        dag = task_kwargs.get("dag") or current_dag()
        task_id = task_kwargs.pop("task_id", None) or self.function.__name__
        if dag is not None:
            task_id = _unique_task_id(task_id, dag.task_dict)
        if "doc" not in task_kwargs and "doc_md" not in task_kwargs and self.function.__doc__:
            task_kwargs["doc"] = self.function.__doc__
        op = _PythonDecoratedOperator(
            task_id=task_id,
            python_callable=self.function,
            op_args=args,
            op_kwargs=kwargs,
            **task_kwargs,
        )
        return XComArg(op)

    def override(self, **kwargs: Any) -> Task[P, R]:
        """The same task with other operator arguments (``task_id``, ``retries``, ...)."""
        return Task(self.function, {**self.kwargs, **kwargs})


def _unique_task_id(task_id: str, existing: dict[str, Any]) -> str:
    """``name``, else ``name__1``, ``name__2``, ... (Airflow's rule for TaskFlow)."""
    if task_id not in existing:
        return task_id
    base = _SUFFIX.sub("", task_id)
    n = 1
    while f"{base}__{n}" in existing:
        n += 1
    return f"{base}__{n}"


class _TaskDecorator:
    """``task`` itself: ``@task``, ``@task(retries=2)`` and ``@task.python``."""

    @overload
    def __call__(self, python_callable: Callable[P, R], /) -> Task[P, R]: ...
    @overload
    def __call__(self, /, **kwargs: Any) -> Callable[[Callable[P, R]], Task[P, R]]: ...

    def __call__(self, python_callable: Any = None, /, **kwargs: Any) -> Any:
        if python_callable is not None:
            return Task(python_callable, kwargs)
        return lambda func: Task(func, kwargs)

    @property
    def python(self) -> _TaskDecorator:
        return self


task = _TaskDecorator()
