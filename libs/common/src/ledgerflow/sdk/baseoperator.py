"""``BaseOperator``: one task of a DAG, with Airflow 3's arguments.

``default_args`` (of the DAG, of the enclosing task groups, and passed to the operator)
fill in any ``__init__`` argument of the operator class that the call does not pass.
Attributes named in ``template_fields`` may hold :class:`XComArg` values (directly or
inside lists and dicts): each one makes its task an upstream and is replaced by the
value before :meth:`execute` runs. Dependencies (``>>``, :func:`chain`, ...) live in
:mod:`ledgerflow.sdk.dependencies`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from ledgerflow.sdk import _source, setup_teardown
from ledgerflow.sdk.dag_definition import DAG, _aware, _check_id, current_dag
from ledgerflow.sdk.dependencies import (
    DependencyMixin,
    Edge,
    chain,
    chain_linear,
    cross_downstream,
    link,
)
from ledgerflow.sdk.exceptions import TaskDeferred
from ledgerflow.sdk.params import NOTSET, ParamsDict
from ledgerflow.sdk.rules import TriggerRule, WeightRule
from ledgerflow.sdk.taskgroup import TaskGroup, current_task_group
from ledgerflow.sdk.xcom_arg import XComArg

if TYPE_CHECKING:
    from ledgerflow.common.dagmodel import SerializedTask
    from ledgerflow.sdk.mapping import OperatorPartial

__all__ = [
    "BaseOperator",
    "Edge",
    "XComArg",
    "chain",
    "chain_linear",
    "cross_downstream",
]

TRIGGER_RULES = frozenset(TriggerRule.all_triggers())
"""Airflow's trigger rules; all of them are accepted and serialized."""

CALLBACK_KINDS = ("execute", "failure", "success", "retry", "skipped")
"""``on_<kind>_callback`` attributes: each is a list of callables (maybe empty)."""


class _Unmapping:
    """While true, operators are being built by :func:`ledgerflow.sdk.mapping.unmap`:
    their ids are final and they join no DAG or group."""

    active = False


def seconds(value: timedelta | float | int | None, what: str) -> float | None:
    """``value`` (a timedelta or a number of seconds) in seconds, checked."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        result = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        result = float(value)
    else:
        raise TypeError(f"{what} must be a timedelta or a number of seconds, not {value!r}")
    if result < 0:
        raise ValueError(f"{what} must not be negative, got {value!r}")
    return result


def _callbacks(value: Any, what: str) -> list[Callable[..., Any]]:
    if value is None:
        return []
    items = list(value) if isinstance(value, list | tuple) else [value]
    for item in items:
        if not callable(item):
            raise TypeError(f"{what} must be a callable or a list of callables, got {item!r}")
    return items


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple | set | frozenset):
        return list(value)
    return [value]


class _PartialDescriptor:
    """``Operator.partial(...)`` on the class; a clear error on an instance."""

    def __get__(self, obj: Any, cls: type[BaseOperator] | None = None) -> Any:
        if obj is not None:

            def partial(**kwargs: Any) -> Any:
                raise TypeError(
                    "partial can only be called on Operator classes, not Tasks themselves"
                )

            return partial
        from ledgerflow.sdk.mapping import OperatorPartial

        def partial_for_class(**kwargs: Any) -> OperatorPartial:
            return OperatorPartial.create(cls, kwargs)  # type: ignore[arg-type]

        return partial_for_class


class BaseOperator(DependencyMixin):
    """One task of a DAG. Subclasses implement :meth:`execute`.

    The arguments are Airflow 3's. ``sla``, ``email*``, ``resources``, ``executor*``,
    ``run_as_user`` and ``logger_name`` are accepted and stored but have no effect yet.
    """

    template_fields: ClassVar[Sequence[str]] = ()
    template_ext: ClassVar[Sequence[str]] = ()
    template_fields_renderers: ClassVar[dict[str, str]] = {}
    ui_color: ClassVar[str] = "#fff"
    ui_fgcolor: ClassVar[str] = "#000"
    shallow_copy_attrs: ClassVar[Sequence[str]] = ()
    operator_extra_links: ClassVar[Collection[Any]] = ()
    # Markers the serializer reads.
    _is_sensor: ClassVar[bool] = False
    _is_branch: ClassVar[bool] = False
    inherits_from_empty_operator: ClassVar[bool] = False
    is_mapped: ClassVar[bool] = False

    partial: ClassVar[Any] = _PartialDescriptor()

    def __init__(
        self,
        task_id: str,
        *,
        owner: str = "airflow",
        email: str | Sequence[str] | None = None,
        email_on_retry: bool = True,
        email_on_failure: bool = True,
        retries: int | None = 0,
        retry_delay: timedelta | float = timedelta(minutes=5),
        retry_exponential_backoff: float | bool = 0,
        max_retry_delay: timedelta | float | None = None,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        depends_on_past: bool = False,
        ignore_first_depends_on_past: bool = True,
        wait_for_past_depends_before_skipping: bool = False,
        wait_for_downstream: bool = False,
        dag: DAG | None = None,
        params: dict[str, Any] | None = None,
        default_args: dict[str, Any] | None = None,
        priority_weight: int = 1,
        weight_rule: str = "downstream",
        queue: str = "default",
        pool: str | None = None,
        pool_slots: int = 1,
        sla: timedelta | None = None,
        execution_timeout: timedelta | float | None = None,
        on_execute_callback: Any = None,
        on_failure_callback: Any = None,
        on_success_callback: Any = None,
        on_retry_callback: Any = None,
        on_skipped_callback: Any = None,
        pre_execute: Callable[..., Any] | None = None,
        post_execute: Callable[..., Any] | None = None,
        trigger_rule: str = "all_success",
        resources: dict[str, Any] | None = None,
        run_as_user: str | None = None,
        map_index_template: str | None = None,
        max_active_tis_per_dag: int | None = None,
        max_active_tis_per_dagrun: int | None = None,
        executor: str | None = None,
        executor_config: dict[str, Any] | None = None,
        do_xcom_push: bool = True,
        multiple_outputs: bool = False,
        inlets: Any = None,
        outlets: Any = None,
        task_group: TaskGroup | None = None,
        doc: str | None = None,
        doc_md: str | None = None,
        doc_json: str | None = None,
        doc_yaml: str | None = None,
        doc_rst: str | None = None,
        task_display_name: str | None = None,
        logger_name: str | None = None,
        allow_nested_operators: bool = True,
        render_template_as_native_obj: bool | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs:
            raise TypeError(
                f"Invalid arguments were passed to {type(self).__name__} (task_id: {task_id}). "
                f"Invalid arguments were:\n**kwargs: {kwargs}"
            )
        if not hasattr(self, "fileloc"):  # set by the __init__ wrapper
            self.fileloc, self.lineno = _source.user_location()
        if not _Unmapping.active:
            dag = dag or (task_group.dag if task_group is not None else None) or current_dag()
            if task_group is None:
                task_group = current_task_group(dag)
            if task_group is not None and task_group.dag is not dag:
                raise ValueError(f"task group {task_group.group_id!r} belongs to another DAG")
            if task_group is not None:
                task_id = task_group.child_id(task_id)
        _check_id(task_id, "task_id")
        if retries is None:
            retries = 0
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            raise ValueError(f"retries must be a non-negative integer, got {retries!r}")
        if not TriggerRule.is_valid(trigger_rule):
            raise ValueError(
                f"The trigger_rule must be one of {sorted(TRIGGER_RULES)}, "
                f"'{dag.dag_id if dag else ''}.{task_id}'; received '{trigger_rule}'."
            )
        if not WeightRule.is_valid(weight_rule):
            raise ValueError(
                f"weight_rule must be one of {sorted(WeightRule.all_weight_rules())}, "
                f"got {weight_rule!r}"
            )
        if pool_slots < 1:
            raise ValueError(f"pool slots for {task_id} cannot be less than 1")

        self.task_id = task_id
        self.owner = owner
        self.email = email
        self.email_on_retry = email_on_retry
        self.email_on_failure = email_on_failure
        self.retries = retries
        self.retry_delay = retry_delay
        self.retry_delay_seconds: float = seconds(retry_delay, "retry_delay") or 0.0
        self.retry_exponential_backoff = retry_exponential_backoff
        self.max_retry_delay = max_retry_delay
        self.max_retry_delay_seconds = seconds(max_retry_delay, "max_retry_delay")
        self.start_date = _aware(start_date)
        self.end_date = _aware(end_date)
        self.depends_on_past = depends_on_past or wait_for_downstream
        self.ignore_first_depends_on_past = ignore_first_depends_on_past
        self.wait_for_past_depends_before_skipping = wait_for_past_depends_before_skipping
        self.wait_for_downstream = wait_for_downstream
        self.params = ParamsDict(params)
        self.priority_weight = int(priority_weight)
        self.weight_rule = WeightRule(weight_rule)
        self.queue = queue
        self.pool = "default_pool" if pool is None else pool
        self.pool_slots = pool_slots
        self.sla = sla  # accepted and ignored, as in Airflow 3
        self.execution_timeout = execution_timeout
        self.execution_timeout_seconds = seconds(execution_timeout, "execution_timeout")
        self.on_execute_callback = _callbacks(on_execute_callback, "on_execute_callback")
        self.on_failure_callback = _callbacks(on_failure_callback, "on_failure_callback")
        self.on_success_callback = _callbacks(on_success_callback, "on_success_callback")
        self.on_retry_callback = _callbacks(on_retry_callback, "on_retry_callback")
        self.on_skipped_callback = _callbacks(on_skipped_callback, "on_skipped_callback")
        self._pre_execute_hook = pre_execute
        self._post_execute_hook = post_execute
        self.trigger_rule = TriggerRule(trigger_rule)
        self.resources = resources
        self.run_as_user = run_as_user
        self.map_index_template = map_index_template
        self.max_active_tis_per_dag = max_active_tis_per_dag
        self.max_active_tis_per_dagrun = max_active_tis_per_dagrun
        self.executor = executor
        self.executor_config = executor_config or {}
        self.do_xcom_push = do_xcom_push
        self.multiple_outputs = multiple_outputs
        self.inlets = _as_list(inlets)
        self.outlets = _as_list(outlets)
        self.doc = doc
        self.doc_md = doc_md
        self.doc_json = doc_json
        self.doc_yaml = doc_yaml
        self.doc_rst = doc_rst
        self._task_display_name = task_display_name
        self.logger_name = logger_name
        self.allow_nested_operators = allow_nested_operators
        self.render_template_as_native_obj = render_template_as_native_obj
        self.is_setup = False
        self.is_teardown = False
        self.on_failure_fail_dagrun = False
        self.upstream_edges: dict[str, Edge] = {}
        self._downstream: dict[str, None] = {}
        self.task_group: TaskGroup | None = task_group
        self._dag: DAG | None = None
        if dag is not None and not _Unmapping.active:
            dag.add_task(self)  # also adds it to its task group

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None and not hasattr(init, "__wrapped__"):
            cls.__init__ = _apply_defaults(init)  # type: ignore[method-assign]

    def __setattr__(self, key: str, value: Any) -> None:
        super().__setattr__(key, value)
        # Assigning an XComArg to a template field after creation adds the dependency,
        # as in Airflow (``op.bash_command = other.output``).
        if self.__dict__.get("_lf_instantiated") and key in self.template_fields:
            XComArg.apply_upstream_relationship(self, value)

    def __repr__(self) -> str:
        return f"<Task({type(self).__name__}): {self.task_id}>"

    # -- identity -----------------------------------------------------------------------
    @property
    def dag(self) -> DAG | None:
        """The DAG of this task (``None`` until it joins one). Assigning adds the task."""
        return self._dag

    @dag.setter
    def dag(self, dag: DAG | None) -> None:
        if dag is None or dag is self._dag:
            return
        if self._dag is not None:
            raise ValueError(f"The DAG assigned to {self} can not be changed.")
        dag.add_task(self)

    def has_dag(self) -> bool:
        return self._dag is not None

    def get_dag(self) -> DAG | None:
        return self._dag

    @property
    def dag_id(self) -> str:
        return self._dag.dag_id if self._dag is not None else f"adhoc_{self.owner}"

    @property
    def node_id(self) -> str:
        return self.task_id

    @property
    def label(self) -> str:
        """The id without the group prefix."""
        group = self.task_group
        if group is not None and group.prefix_group_id and group.group_id:
            return self.task_id[len(group.group_id) + 1 :]
        return self.task_id

    @property
    def task_display_name(self) -> str:
        return self._task_display_name or self.task_id

    @property
    def task_type(self) -> str:
        return type(self).__name__

    @property
    def operator_class(self) -> type[BaseOperator]:
        return type(self)

    @property
    def operator_name(self) -> str:
        return getattr(self, "custom_operator_name", None) or self.task_type

    @property
    def log(self) -> logging.Logger:
        """``airflow.task.operators.<module>.<class>``, or ``logger_name``."""
        name = self.logger_name or f"airflow.task.operators.{type(self).__module__}."
        return logging.getLogger(name if self.logger_name else name + type(self).__name__)

    # -- dependencies -----------------------------------------------------------------
    def _dependency_nodes(self, as_downstream: bool) -> list[Any]:
        return [self]

    @property
    def upstream_task_ids(self) -> set[str]:
        return set(self.upstream_edges)

    @property
    def downstream_task_ids(self) -> set[str]:
        return set(self._downstream)

    @property
    def upstream_list(self) -> list[BaseOperator]:
        dag = self._dag
        return [dag.task_dict[t] for t in self.upstream_edges if dag and t in dag.task_dict]

    @property
    def downstream_list(self) -> list[BaseOperator]:
        dag = self._dag
        return [dag.task_dict[t] for t in self._downstream if dag and t in dag.task_dict]

    def get_direct_relative_ids(self, upstream: bool = False) -> set[str]:
        return self.upstream_task_ids if upstream else self.downstream_task_ids

    def get_direct_relatives(self, upstream: bool = False) -> list[BaseOperator]:
        return self.upstream_list if upstream else self.downstream_list

    def get_flat_relative_ids(self, *, upstream: bool = False) -> set[str]:
        """Every task reachable upstream (or downstream) of this one."""
        dag = self._dag
        if dag is None:
            return set()
        found: set[str] = set()
        todo = list(self.get_direct_relative_ids(upstream))
        while todo:
            tid = todo.pop()
            if tid in found or tid not in dag.task_dict:
                continue
            found.add(tid)
            todo.extend(dag.task_dict[tid].get_direct_relative_ids(upstream))
        return found

    def get_flat_relatives(self, upstream: bool = False) -> list[BaseOperator]:
        dag = self._dag
        if dag is None:
            return []
        return [dag.task_dict[t] for t in self.get_flat_relative_ids(upstream=upstream)]

    @property
    def output(self) -> XComArg:
        """This task's return value, for passing to another task."""
        return XComArg(self)

    # -- setup / teardown -------------------------------------------------------------
    def as_setup(self) -> BaseOperator:
        """Mark this task as a setup task."""
        if self.is_teardown:
            raise ValueError(
                f"Cannot mark task '{self.task_id}' as setup; task is already a teardown."
            )
        self.is_setup = True
        return self

    def as_teardown(
        self, *, setups: Any = NOTSET, on_failure_fail_dagrun: Any = NOTSET
    ) -> BaseOperator:
        """Mark this task as a teardown (trigger rule ``all_done_setup_success``), and
        ``setups`` (a task, output or list) as its setups, upstream of it."""
        if self.is_setup:
            raise ValueError(
                f"Cannot mark task '{self.task_id}' as teardown; task is already a setup."
            )
        self.is_teardown = True
        self.trigger_rule = TriggerRule.ALL_DONE_SETUP_SUCCESS
        if on_failure_fail_dagrun is not NOTSET:
            self.on_failure_fail_dagrun = bool(on_failure_fail_dagrun)
        if setups is not NOTSET and setups is not None:
            items = setups if isinstance(setups, list | tuple) else [setups]
            _, lineno = _source.user_location()
            for item in items:
                item.as_setup()
                for ref in item._dependency_nodes(False):
                    link(ref, self, lineno)
        return self

    def __enter__(self) -> BaseOperator:
        if not self.is_setup and not self.is_teardown:
            raise RuntimeError("Only setup/teardown tasks can be used as context managers.")
        setup_teardown.enter(self)
        return self

    def __exit__(self, *exc: object) -> None:
        setup_teardown.exit_scope()

    # -- XComArgs in template fields ----------------------------------------------------
    def _set_xcomarg_dependencies(self) -> None:
        for name in self.template_fields:
            XComArg.apply_upstream_relationship(self, getattr(self, name, None))

    def render_template_fields(self, context: dict[str, Any], jinja_env: Any = None) -> None:
        """Render ``template_fields`` in place (Jinja, XComArgs, params): delegated to
        :func:`ledgerflow.sdk.templating.render_template_fields`."""
        try:
            from ledgerflow.sdk.templating import render_template_fields
        except ImportError:  # the runtime half is not there: resolve XComArgs only
            for name in self.template_fields:
                setattr(self, name, _resolve(getattr(self, name, None), context))
            return
        render_template_fields(self, context)

    # -- running --------------------------------------------------------------------------
    def pre_execute(self, context: Any) -> None:
        """Runs just before :meth:`execute` (calls the ``pre_execute`` argument, if any)."""
        if self._pre_execute_hook is not None:
            self._pre_execute_hook(context)

    def execute(self, context: dict[str, Any]) -> Any:
        """Do the work; the return value becomes the task's XCom (must be JSON)."""
        raise NotImplementedError(f"{type(self).__name__} must implement execute()")

    def post_execute(self, context: Any, result: Any = None) -> None:
        """Runs just after :meth:`execute` (calls the ``post_execute`` argument, if any)."""
        if self._post_execute_hook is not None:
            self._post_execute_hook(context, result)

    def on_kill(self) -> None:
        """Override to clean up when the task is stopped."""

    def defer(
        self, *, trigger: Any, method_name: str, kwargs: Any = None, timeout: Any = None
    ) -> Any:
        """Airflow's deferral: not supported (no triggerer); raises :class:`TaskDeferred`,
        which fails the task with a message saying so."""
        raise TaskDeferred(trigger=trigger, method_name=method_name, kwargs=kwargs, timeout=timeout)

    def unmap(self, resolve: Any = None) -> BaseOperator:
        return self

    # -- serialization ------------------------------------------------------------------
    def display_fields(self) -> dict[str, Any]:
        """JSON-ready operator-specific fields for the UI: the template fields that hold
        strings (Jinja source), unrendered."""
        shown: dict[str, Any] = {}
        for name in self.template_fields:
            value = getattr(self, name, None)
            if isinstance(value, str | XComArg):
                shown[name] = str(value)
        return shown

    def callback_names(self) -> tuple[str, ...]:
        return tuple(
            f"on_{kind}_callback"
            for kind in CALLBACK_KINDS
            if getattr(self, f"on_{kind}_callback", None)
        )

    def _serialize_fields(self) -> dict[str, Any]:
        backoff = self.retry_exponential_backoff
        return {
            "task_id": self.task_id,
            "operator": self.operator_name,
            "upstream_task_ids": tuple(self.upstream_edges),
            "trigger_rule": self.trigger_rule.value,
            "retries": self.retries,
            "retry_delay_seconds": self.retry_delay_seconds,
            "queue": self.queue,
            "pool": self.pool,
            "priority_weight": self.priority_weight,
            "execution_timeout_seconds": self.execution_timeout_seconds,
            "owner": self.owner,
            "doc": self.doc or self.doc_md or self.doc_rst or self.doc_json or self.doc_yaml,
            "lineno": self.lineno,
            "template_fields": self.display_fields(),
            "retry_exponential_backoff": (2.0 if backoff is True else float(backoff or 0)),
            "max_retry_delay_seconds": self.max_retry_delay_seconds,
            "task_group_id": (
                self.task_group.group_id
                if self.task_group is not None and not self.task_group.is_root
                else None
            ),
            "is_setup": self.is_setup,
            "is_teardown": self.is_teardown,
            "on_failure_fail_dagrun": self.on_failure_fail_dagrun,
            "sensor": self._sensor_spec(),
            "depends_on_past": self.depends_on_past,
            "ignore_first_depends_on_past": self.ignore_first_depends_on_past,
            "wait_for_downstream": self.wait_for_downstream,
            "weight_rule": self.weight_rule.value,
            "max_active_tis_per_dag": self.max_active_tis_per_dag,
            "max_active_tis_per_dagrun": self.max_active_tis_per_dagrun,
            "pool_slots": self.pool_slots,
            "callbacks": self.callback_names(),
            "is_branch": self._is_branch,
            **_asset_refs(self.inlets, self.outlets),
        }

    def _sensor_spec(self) -> Any:
        return None

    def serialize(self) -> SerializedTask:
        from ledgerflow.common.dagmodel import SerializedTask

        return SerializedTask(**self._serialize_fields())


def _asset_refs(inlets: Any, outlets: Any) -> dict[str, Any]:
    """``inlets``/``outlets`` as asset references (other lineage objects are ignored)."""
    from ledgerflow.sdk.assets import serialize_refs

    return {"inlets": serialize_refs(inlets or ()), "outlets": serialize_refs(outlets or ())}


def _init_params(cls: type) -> tuple[frozenset[str], tuple[str, ...]]:
    """Keyword names every ``__init__`` in the MRO accepts, and the class's positional ones."""
    cached = cls.__dict__.get("_lf_init_params")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        code = getattr(getattr(init, "__wrapped__", init), "__code__", None)
        if code is not None:
            names.update(code.co_varnames[1 : code.co_argcount + code.co_kwonlyargcount])
    own = getattr(cls.__init__, "__wrapped__", cls.__init__)  # type: ignore[misc]
    own_code = getattr(own, "__code__", None)
    positional: tuple[str, ...] = own_code.co_varnames[1 : own_code.co_argcount] if own_code else ()
    result = (frozenset(names - {"dag", "task_id", "default_args", "params"}), positional)
    type.__setattr__(cls, "_lf_init_params", result)
    return result


def merged_default_args(dag: DAG | None, group: TaskGroup | None) -> dict[str, Any]:
    """The DAG's ``default_args`` overridden by the enclosing groups' ones."""
    merged: dict[str, Any] = dict(dag.default_args) if dag is not None else {}
    if group is not None and group.default_args:
        merged.update(group.default_args)
    return merged


def _apply_defaults(init: Callable[..., None]) -> Callable[..., None]:
    """Wrap an operator ``__init__``: fill from ``default_args``, record the user line, and
    register XComArg dependencies once the outermost ``__init__`` has finished."""

    @functools.wraps(init)
    def wrapper(self: BaseOperator, *args: Any, **kwargs: Any) -> None:
        if self.__dict__.get("_lf_initializing"):
            init(self, *args, **kwargs)  # a subclass calling super().__init__
            return
        self._lf_initializing = True
        try:
            if not self.__dict__.get("fileloc"):
                self.fileloc, self.lineno = _source.user_location()
            if _Unmapping.active:
                default_args: dict[str, Any] = {}
            else:
                group = kwargs.get("task_group")
                dag = kwargs.get("dag") or (group.dag if group is not None else None)
                dag = dag or current_dag()
                default_args = merged_default_args(dag, group or current_task_group(dag))
            default_args.update(kwargs.pop("default_args", None) or {})
            if default_args:
                default_params = default_args.get("params")
                if default_params:
                    kwargs["params"] = {**default_params, **(kwargs.get("params") or {})}
                hook = getattr(type(self), "_hook_apply_defaults", None)
                if hook is not None:
                    hook(kwargs, default_args)
                accepted, positional = _init_params(type(self))
                bound = set(positional[: len(args)])
                for key, value in default_args.items():
                    if key in accepted and key not in kwargs and key not in bound:
                        kwargs[key] = value
            init(self, *args, **kwargs)
        finally:
            self._lf_initializing = False
        if not _Unmapping.active:
            self._set_xcomarg_dependencies()
            setup_teardown.register(self)
        self._lf_instantiated = True

    return wrapper


BaseOperator.__init__ = _apply_defaults(BaseOperator.__init__)  # type: ignore[method-assign]


def _resolve(value: Any, context: dict[str, Any]) -> Any:
    from ledgerflow.sdk.xcom_arg import ResolveMixin

    if isinstance(value, ResolveMixin):
        return value.resolve(context)
    if isinstance(value, list | tuple | set | frozenset):
        return type(value)(_resolve(item, context) for item in value)
    if isinstance(value, dict):
        return {k: _resolve(v, context) for k, v in value.items()}
    return value
