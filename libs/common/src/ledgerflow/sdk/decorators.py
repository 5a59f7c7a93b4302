"""TaskFlow: ``@task`` and its variants, ``@setup`` and ``@teardown``.

``@task`` (= ``@task.python``), ``@task.bash`` (the function returns the command),
``@task.branch``, ``@task.short_circuit`` and ``@task.sensor`` (the function is the
poke). Calling a decorated function inside a DAG adds a task and returns its
:class:`XComArg`; XComArgs among the arguments become upstreams and, at run time, their
values. A second call gives the task id ``name__1``, then ``name__2`` (Airflow's rule).
``fn.override(task_id=..., ...)``, ``fn.partial(...)``, ``fn.expand(...)`` and
``fn.expand_kwargs(...)`` work as in Airflow.
"""

from __future__ import annotations

import functools
import inspect
import re
import types
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, ClassVar, Generic, ParamSpec, TypeVar

from ledgerflow.sdk.baseoperator import BaseOperator, _Unmapping
from ledgerflow.sdk.branch import BranchMixIn, ShortCircuitOperator
from ledgerflow.sdk.dag_definition import DAG, current_dag
from ledgerflow.sdk.mapping import (
    DictOfListsExpandInput,
    ListOfDictsExpandInput,
    MappedOperator,
    ensure_xcomarg_return_value,
    is_mappable,
    prevent_duplicates,
)
from ledgerflow.sdk.operators import BashOperator, PythonOperator, context_kwargs
from ledgerflow.sdk.rules import TriggerRule
from ledgerflow.sdk.sensors import PythonSensor
from ledgerflow.sdk.taskgroup import TaskGroup, TaskGroupFactory, current_task_group
from ledgerflow.sdk.xcom_arg import XComArg

P = ParamSpec("P")
R = TypeVar("R")

KNOWN_CONTEXT_KEYS = frozenset(
    {
        "conf",
        "conn",
        "dag",
        "dag_run",
        "data_interval_end",
        "data_interval_start",
        "ds",
        "ds_nodash",
        "exception",
        "expanded_ti_count",
        "inlet_events",
        "inlets",
        "logical_date",
        "macros",
        "map_index",
        "map_index_template",
        "outlet_events",
        "outlets",
        "params",
        "prev_data_interval_end_success",
        "prev_data_interval_start_success",
        "prev_end_date_success",
        "prev_start_date_success",
        "reason",
        "run_id",
        "start_date",
        "task",
        "task_instance",
        "task_instance_key_str",
        "task_reschedule_count",
        "templates_dict",
        "test_mode",
        "ti",
        "triggering_asset_events",
        "try_number",
        "ts",
        "ts_nodash",
        "ts_nodash_with_tz",
        "var",
    }
)
"""Names a TaskFlow function may take to receive a context value (Airflow 3's keys, plus
ledgerflow's ``conf`` and ``map_index``)."""

_SUFFIX = re.compile(r"__\d+$")


def get_unique_task_id(
    task_id: str, dag: DAG | None = None, task_group: TaskGroup | None = None
) -> str:
    """``task_id``, or ``task_id__N`` with N one more than the largest suffix in use."""
    dag = dag or current_dag()
    if dag is None:
        return task_id
    task_group = task_group or current_task_group(dag)
    full_id = task_group.child_id(task_id) if task_group else task_id
    if full_id not in dag.task_dict:
        return task_id
    prefix = _SUFFIX.sub("", full_id)
    pattern = re.compile(rf"^{re.escape(prefix)}__(\d+)$")
    suffixes = [int(m.group(1)) for tid in dag.task_dict if (m := pattern.match(tid))]
    core = _SUFFIX.sub("", task_id)
    return f"{core}__{max(suffixes, default=0) + 1}"


def _context_signature(func: Callable[..., Any]) -> inspect.Signature:
    """``func``'s signature with context-key parameters defaulting to None, so a call that
    leaves them out binds (they are filled in when the task runs)."""
    signature = inspect.signature(func)
    faulty = [
        p.name
        for p in signature.parameters.values()
        if p.name in KNOWN_CONTEXT_KEYS and p.default not in (None, inspect.Parameter.empty)
    ]
    if faulty:
        raise ValueError(f"Context key parameter {faulty[0]} can't have a default other than None")
    params = [
        p.replace(default=None) if p.name in KNOWN_CONTEXT_KEYS else p
        for p in signature.parameters.values()
    ]
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    seen_default = False
    fixed = []
    for p in params:
        if p.kind in positional:
            if p.default is not inspect.Parameter.empty:
                seen_default = True
            elif seen_default:
                p = p.replace(default=None)
        fixed.append(p)
    return signature.replace(parameters=fixed)


class DecoratedOperator(BaseOperator):
    """Wraps a TaskFlow function: ``op_args``/``op_kwargs`` are its call's arguments.

    The call is checked against the function's signature when the DAG is built (context
    keys such as ``ti`` or ``params`` may be left out).
    """

    template_fields: ClassVar[Sequence[str]] = ("op_args", "op_kwargs")
    template_fields_renderers: ClassVar[dict[str, str]] = {"op_args": "py", "op_kwargs": "py"}
    shallow_copy_attrs: ClassVar[Sequence[str]] = ("python_callable",)
    custom_operator_name: ClassVar[str] = "@task"

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        task_id: str,
        op_args: Collection[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        kwargs_to_upstream: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not _Unmapping.active:
            task_id = get_unique_task_id(task_id, kwargs.get("dag"), kwargs.get("task_group"))
        self.python_callable = python_callable
        op_args = list(op_args or ())
        op_kwargs = dict(op_kwargs or {})
        signature = _context_signature(python_callable)
        try:
            if kwargs.pop("_airflow_mapped_validation_only", False):
                signature.bind_partial(*op_args, **op_kwargs)
            else:
                signature.bind(*op_args, **op_kwargs)
        except TypeError as e:
            raise TypeError(f"{python_callable.__name__}() {e}") from None
        self.op_args = op_args
        self.op_kwargs = op_kwargs
        super().__init__(task_id=task_id, **(kwargs_to_upstream or {}), **kwargs)

    @classmethod
    def _hook_apply_defaults(cls, kwargs: dict[str, Any], default_args: Mapping[str, Any]) -> None:
        """``default_args`` named like the function's parameters fill ``op_kwargs``."""
        func = kwargs.get("python_callable")
        if func is None:
            return
        op_kwargs = dict(kwargs.get("op_kwargs") or {})
        positional = len(kwargs.get("op_args") or ())
        for i, name in enumerate(inspect.signature(func).parameters):
            if i >= positional and name not in op_kwargs and name in default_args:
                op_kwargs[name] = default_args[name]
        kwargs["op_kwargs"] = op_kwargs

    def determine_kwargs(self, context: Mapping[str, Any]) -> dict[str, Any]:
        merged = {**context, "templates_dict": getattr(self, "templates_dict", None)}
        return context_kwargs(self.python_callable, self.op_args, self.op_kwargs, merged)

    def execute(self, context: dict[str, Any]) -> Any:
        return self.python_callable(*self.op_args, **self.determine_kwargs(context))


class _PythonDecoratedOperator(DecoratedOperator, PythonOperator):
    """``@task`` / ``@task.python``."""

    template_fields: ClassVar[Sequence[str]] = ("templates_dict", "op_args", "op_kwargs")
    custom_operator_name: ClassVar[str] = "@task"

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Any = None,
        op_kwargs: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            python_callable=python_callable,
            op_args=op_args,
            op_kwargs=op_kwargs,
            kwargs_to_upstream={
                "python_callable": python_callable,
                "op_args": op_args,
                "op_kwargs": op_kwargs,
            },
            **kwargs,
        )

    def execute(self, context: dict[str, Any]) -> Any:
        return PythonOperator.execute(self, context)


class _BranchPythonDecoratedOperator(_PythonDecoratedOperator, BranchMixIn):
    """``@task.branch``: the function returns the task id(s) to follow."""

    custom_operator_name: ClassVar[str] = "@task.branch"
    _is_branch: ClassVar[bool] = True

    def execute(self, context: dict[str, Any]) -> Any:
        return self.do_branch(context, PythonOperator.execute(self, context))


class _ShortCircuitDecoratedOperator(DecoratedOperator, ShortCircuitOperator):
    """``@task.short_circuit``: a falsy return value skips what is downstream."""

    custom_operator_name: ClassVar[str] = "@task.short_circuit"
    template_fields: ClassVar[Sequence[str]] = ("templates_dict", "op_args", "op_kwargs")

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Any = None,
        op_kwargs: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            python_callable=python_callable,
            op_args=op_args,
            op_kwargs=op_kwargs,
            kwargs_to_upstream={
                "python_callable": python_callable,
                "op_args": op_args,
                "op_kwargs": op_kwargs,
            },
            **kwargs,
        )

    def execute(self, context: dict[str, Any]) -> Any:
        return ShortCircuitOperator.execute(self, context)


class _BashDecoratedOperator(DecoratedOperator, BashOperator):
    """``@task.bash``: the function returns the bash command to run (rendered as a
    template, then run as ``BashOperator`` does)."""

    template_fields: ClassVar[Sequence[str]] = (
        "op_args",
        "op_kwargs",
        "bash_command",
        "env",
        "cwd",
    )
    custom_operator_name: ClassVar[str] = "@task.bash"

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Any = None,
        op_kwargs: Any = None,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("multiple_outputs", None)  # Airflow ignores it for @task.bash
        super().__init__(
            python_callable=python_callable,
            op_args=op_args,
            op_kwargs=op_kwargs,
            bash_command="",
            multiple_outputs=False,
            **kwargs,
        )

    def execute(self, context: dict[str, Any]) -> Any:
        command = self.python_callable(*self.op_args, **self.determine_kwargs(context))
        if not isinstance(command, str) or not command.strip():
            raise TypeError(
                "The returned value from the TaskFlow callable must be a non-empty string."
            )
        self.bash_command = command
        # Render the command only: the other fields were rendered before execute().
        self.template_fields = ("bash_command",)  # type: ignore[misc]
        try:
            self.render_template_fields(context)
        finally:
            del self.template_fields
        return BashOperator.execute(self, context)

    def display_fields(self) -> dict[str, Any]:
        from ledgerflow.sdk.operators import callable_name

        return {"python_callable": callable_name(self.python_callable)}


class DecoratedSensorOperator(DecoratedOperator, PythonSensor):
    """``@task.sensor``: the function is the poke (returns a bool or a
    ``PokeReturnValue``)."""

    template_fields: ClassVar[Sequence[str]] = ("op_args", "op_kwargs")
    custom_operator_name: ClassVar[str] = "@task.sensor"

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Any = None,
        op_kwargs: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            python_callable=python_callable,
            op_args=op_args,
            op_kwargs=op_kwargs,
            kwargs_to_upstream={
                "python_callable": python_callable,
                "op_args": op_args,
                "op_kwargs": op_kwargs,
            },
            **kwargs,
        )

    def execute(self, context: dict[str, Any]) -> Any:
        return PythonSensor.execute(self, context)


def _infer_multiple_outputs(function: Callable[..., Any]) -> bool:
    """True when the return annotation is a mapping type (``-> dict[str, int]``)."""
    annotation = getattr(function, "__annotations__", {}).get("return")
    if annotation is None:
        return False
    try:
        import typing

        def fake() -> None: ...

        fake.__annotations__ = {"return": annotation}
        return_type = typing.get_type_hints(fake, getattr(function, "__globals__", {})).get(
            "return", Any
        )
    except Exception:  # a forward reference that cannot be resolved
        return False
    ttype = getattr(return_type, "__origin__", return_type)
    return isinstance(ttype, type) and issubclass(ttype, Mapping)


class Task(Generic[P, R]):
    """A TaskFlow function (Airflow's ``_TaskDecorator``). Calling it adds a task."""

    def __init__(
        self,
        function: Callable[P, R],
        operator_class: type[DecoratedOperator],
        kwargs: dict[str, Any],
        *,
        multiple_outputs: bool | None = None,
        decorator_name: str = "task",
        is_setup: bool = False,
        is_teardown: bool = False,
        on_failure_fail_dagrun: bool = False,
    ) -> None:
        if not callable(function):
            raise TypeError(f"@{decorator_name} needs a function, got {function!r}")
        functools.update_wrapper(self, function)
        self.function = function
        self.operator_class = operator_class
        self.kwargs = dict(kwargs)
        self.decorator_name = decorator_name
        self.multiple_outputs = (
            _infer_multiple_outputs(function) if multiple_outputs is None else multiple_outputs
        )
        self.is_setup = is_setup
        self.is_teardown = is_teardown
        self.on_failure_fail_dagrun = on_failure_fail_dagrun
        if "self" in inspect.signature(function).parameters:
            raise TypeError(f"@{decorator_name} does not support methods")
        self.kwargs.setdefault("task_id", function.__name__)

    def __repr__(self) -> str:
        return f"<@{self.decorator_name} {self.function.__name__}>"

    def _evolve(self, kwargs: dict[str, Any]) -> Task[P, R]:
        return Task(
            self.function,
            self.operator_class,
            kwargs,
            multiple_outputs=self.multiple_outputs,
            decorator_name=self.decorator_name,
            is_setup=self.is_setup,
            is_teardown=self.is_teardown,
            on_failure_fail_dagrun=self.on_failure_fail_dagrun,
        )

    def _task_kwargs(self) -> dict[str, Any]:
        kwargs = dict(self.kwargs)
        if self.is_teardown:
            if "trigger_rule" in kwargs:
                raise ValueError("Trigger rule not configurable for teardown tasks.")
            kwargs["trigger_rule"] = TriggerRule.ALL_DONE_SETUP_SUCCESS
        return kwargs

    def _mark(self, op: BaseOperator, on_failure_fail_dagrun: bool) -> None:
        op.is_setup = self.is_setup
        op.is_teardown = self.is_teardown
        op.on_failure_fail_dagrun = on_failure_fail_dagrun

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> XComArg:
        task_kwargs = self._task_kwargs()
        on_failure_fail_dagrun = task_kwargs.pop(
            "on_failure_fail_dagrun", self.on_failure_fail_dagrun
        )
        op = self.operator_class(
            python_callable=self.function,
            op_args=args,
            op_kwargs=kwargs,
            multiple_outputs=self.multiple_outputs,
            **task_kwargs,
        )
        self._mark(op, on_failure_fail_dagrun)
        if self.function.__doc__ and not any(
            (op.doc, op.doc_md, op.doc_json, op.doc_rst, op.doc_yaml)
        ):
            op.doc_md = self.function.__doc__
        return XComArg(op)

    def override(self, **kwargs: Any) -> Task[P, R]:
        """The same task with other operator arguments (``task_id``, ``retries``, ...)."""
        return self._evolve({**self.kwargs, **kwargs})

    # -- mapping ----------------------------------------------------------------------
    def _validate_arg_names(self, func: str, kwargs: Mapping[str, Any]) -> None:
        shadowed = sorted(KNOWN_CONTEXT_KEYS.intersection(kwargs))
        if len(shadowed) == 1:
            raise ValueError(f"cannot call {func}() on task context variable {shadowed[0]!r}")
        if shadowed:
            names = ", ".join(repr(n) for n in shadowed)
            raise ValueError(f"cannot call {func}() on task context variables {names}")
        parameters = inspect.signature(self.function).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            return
        left = dict(kwargs)
        for name in parameters:
            value = left.pop(name, None)
            if func == "expand" and name in kwargs and not is_mappable(value):
                raise ValueError(
                    f"expand() got an unexpected type {type(value).__name__!r} for keyword "
                    f"argument {name!r}"
                )
        if len(left) == 1:
            raise TypeError(f"{func}() got an unexpected keyword argument {next(iter(left))!r}")
        if left:
            names = ", ".join(repr(n) for n in left)
            raise TypeError(f"{func}() got unexpected keyword arguments {names}")

    def partial(self, **kwargs: Any) -> Task[P, R]:
        """Fix some of the function's arguments for ``expand``."""
        self._validate_arg_names("partial", kwargs)
        old = self.kwargs.get("op_kwargs", {})
        prevent_duplicates(old, kwargs, fail_reason="duplicate partial")
        return self._evolve({**self.kwargs, "op_kwargs": {**kwargs, **old}})

    def expand(self, **map_kwargs: Any) -> XComArg:
        """Map over the cross product of these arguments' values (lists, dicts, XComArgs)."""
        if not map_kwargs:
            raise TypeError("no arguments to expand against")
        self._validate_arg_names("expand", map_kwargs)
        prevent_duplicates(
            self.kwargs.get("op_kwargs", {}), map_kwargs, fail_reason="mapping already partial"
        )
        return self._expand(DictOfListsExpandInput(map_kwargs))

    def expand_kwargs(self, kwargs: Any, *, strict: bool = True) -> XComArg:
        """Map over a list of dicts of arguments (or an XComArg giving one)."""
        if isinstance(kwargs, Sequence) and not isinstance(kwargs, str):
            for item in kwargs:
                if not isinstance(item, XComArg | Mapping):
                    raise TypeError(f"expected XComArg or list[dict], not {type(kwargs).__name__}")
        elif not isinstance(kwargs, XComArg):
            raise TypeError(f"expected XComArg or list[dict], not {type(kwargs).__name__}")
        return self._expand(ListOfDictsExpandInput(kwargs))

    def _expand(self, expand_input: DictOfListsExpandInput | ListOfDictsExpandInput) -> XComArg:
        ensure_xcomarg_return_value(expand_input.value)
        task_kwargs = self._task_kwargs()
        on_failure_fail_dagrun = task_kwargs.pop(
            "on_failure_fail_dagrun", self.on_failure_fail_dagrun
        )
        dag = task_kwargs.pop("dag", None) or current_dag()
        task_group = task_kwargs.pop("task_group", None) or current_task_group(dag)
        default_args = task_kwargs.pop("default_args", None)
        task_id = get_unique_task_id(task_kwargs.pop("task_id"), dag, task_group)
        op_kwargs = dict(task_kwargs.pop("op_kwargs", {}))
        # Check the fixed arguments against the signature now (the mapped ones later).
        _context_signature(self.function).bind_partial(**op_kwargs)
        partial_kwargs = {
            "python_callable": self.function,
            "op_args": [],
            "op_kwargs": op_kwargs,
            "multiple_outputs": self.multiple_outputs,
            **task_kwargs,
        }
        op = MappedOperator.build(
            operator_class=self.operator_class,
            task_id=task_id,
            dag=dag,
            task_group=task_group,
            default_args=default_args,
            partial_kwargs=partial_kwargs,
            expand_input=expand_input,
            expand_input_attr="op_kwargs",
        )
        self._mark(op, on_failure_fail_dagrun)
        return XComArg(op)


class _TaskDecoratorCollection:
    """``task``: ``@task``, ``@task(...)``, ``@task.python``, ``@task.bash``,
    ``@task.branch``, ``@task.short_circuit`` and ``@task.sensor``."""

    def _decorator(
        self,
        operator_class: type[DecoratedOperator],
        name: str,
        python_callable: Any,
        multiple_outputs: bool | None,
        kwargs: dict[str, Any],
    ) -> Any:
        def wrap(function: Callable[..., Any]) -> Task[Any, Any]:
            return Task(
                function,
                operator_class,
                kwargs,
                multiple_outputs=multiple_outputs,
                decorator_name=name,
            )

        if python_callable is not None:
            return wrap(python_callable)
        return wrap

    def __call__(
        self, python_callable: Any = None, multiple_outputs: bool | None = None, **kwargs: Any
    ) -> Any:
        return self._decorator(
            _PythonDecoratedOperator, "task", python_callable, multiple_outputs, kwargs
        )

    def python(
        self, python_callable: Any = None, multiple_outputs: bool | None = None, **kwargs: Any
    ) -> Any:
        return self._decorator(
            _PythonDecoratedOperator, "task.python", python_callable, multiple_outputs, kwargs
        )

    def branch(
        self, python_callable: Any = None, multiple_outputs: bool | None = None, **kwargs: Any
    ) -> Any:
        return self._decorator(
            _BranchPythonDecoratedOperator, "task.branch", python_callable, multiple_outputs, kwargs
        )

    def short_circuit(
        self,
        python_callable: Any = None,
        multiple_outputs: bool | None = None,
        ignore_downstream_trigger_rules: bool = True,
        **kwargs: Any,
    ) -> Any:
        kwargs["ignore_downstream_trigger_rules"] = ignore_downstream_trigger_rules
        return self._decorator(
            _ShortCircuitDecoratedOperator,
            "task.short_circuit",
            python_callable,
            multiple_outputs,
            kwargs,
        )

    def bash(self, python_callable: Any = None, **kwargs: Any) -> Any:
        return self._decorator(_BashDecoratedOperator, "task.bash", python_callable, False, kwargs)

    def sensor(self, python_callable: Any = None, **kwargs: Any) -> Any:
        return self._decorator(
            DecoratedSensorOperator, "task.sensor", python_callable, False, kwargs
        )

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(
            f"@task.{name} is not supported by ledgerflow (supported: @task, @task.python, "
            "@task.bash, @task.branch, @task.short_circuit, @task.sensor)"
        )


task = _TaskDecoratorCollection()


def setup(func: Any) -> Any:
    """Mark a TaskFlow function (or a plain function) as a setup task."""
    if isinstance(func, TaskGroupFactory):
        raise TypeError("Task groups cannot be marked as setup or teardown.")
    if isinstance(func, types.FunctionType):
        func = task(func)
    if not isinstance(func, Task):
        raise TypeError(f"@setup needs a function or a @task, got {func!r}")
    if func.is_teardown:
        raise ValueError(f"{func!r} is already a teardown")
    func.is_setup = True
    return func


def teardown(_func: Any = None, *, on_failure_fail_dagrun: bool = False) -> Any:
    """Mark a TaskFlow function (or a plain function) as a teardown task (trigger rule
    ``all_done_setup_success``); ``on_failure_fail_dagrun`` fails the run if it fails."""

    def mark(func: Any) -> Any:
        if isinstance(func, TaskGroupFactory):
            raise TypeError("Task groups cannot be marked as setup or teardown.")
        if isinstance(func, types.FunctionType):
            func = task(func)
        if not isinstance(func, Task):
            raise TypeError(f"@teardown needs a function or a @task, got {func!r}")
        if func.is_setup:
            raise ValueError(f"{func!r} is already a setup")
        func.is_teardown = True
        func.on_failure_fail_dagrun = on_failure_fail_dagrun
        return func

    if _func is None:
        return mark
    return mark(_func)
