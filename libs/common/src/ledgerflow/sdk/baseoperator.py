"""``BaseOperator``, dependencies (``>>``, ``<<``, :func:`chain`) and ``XComArg``."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from ledgerflow.sdk import _source
from ledgerflow.sdk.dag_definition import DAG, _check_id, current_dag

if TYPE_CHECKING:
    from ledgerflow.common.dagmodel import SerializedTask

TRIGGER_RULES = frozenset(
    {
        "all_success",
        "all_failed",
        "all_done",
        "all_done_setup_success",
        "all_skipped",
        "one_success",
        "one_done",
        "one_failed",
        "none_failed",
        "none_failed_min_one_success",
        "none_skipped",
        "always",
    }
)
"""Airflow's trigger rules. The SDK accepts them all; parsing refuses the ones the
scheduler does not implement yet (see ``dagmodel.TriggerRule``)."""

# Orders edges across the whole process, so a cycle can name the edge that closed it.
_edge_seq = itertools.count()


class Edge(NamedTuple):
    """How an upstream dependency was declared."""

    seq: int
    lineno: int | None


def _seconds(value: timedelta | float | int | None, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise TypeError(f"{what} must be a timedelta or a number of seconds, not {value!r}")
    if seconds < 0:
        raise ValueError(f"{what} must not be negative, got {value!r}")
    return seconds


class BaseOperator:
    """One task of a DAG. Subclasses implement :meth:`execute`.

    ``default_args`` of the DAG fill in any ``__init__`` argument of the operator class
    that the call does not pass (as in Airflow). Attributes named in ``template_fields``
    may hold :class:`XComArg` values (directly or inside lists and dicts): each one makes
    its task an upstream, and is replaced by the upstream's return value before
    :meth:`execute` runs.
    """

    template_fields: ClassVar[Sequence[str]] = ()

    def __init__(
        self,
        task_id: str,
        *,
        retries: int = 0,
        retry_delay: timedelta | float = timedelta(minutes=5),
        queue: str = "default",
        pool: str = "default_pool",
        priority_weight: int = 1,
        execution_timeout: timedelta | float | None = None,
        owner: str = "airflow",
        trigger_rule: str = "all_success",
        doc: str | None = None,
        doc_md: str | None = None,
        do_xcom_push: bool = True,
        dag: DAG | None = None,
    ) -> None:
        _check_id(task_id, "task_id")
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            raise ValueError(f"retries must be a non-negative integer, got {retries!r}")
        if trigger_rule not in TRIGGER_RULES:
            raise ValueError(
                f"unknown trigger_rule {trigger_rule!r}; expected one of {sorted(TRIGGER_RULES)}"
            )
        self.task_id = task_id
        self.retries = retries
        self.retry_delay = retry_delay
        self.retry_delay_seconds: float = _seconds(retry_delay, "retry_delay") or 0.0
        self.queue = queue
        self.pool = pool
        self.priority_weight = int(priority_weight)
        self.execution_timeout = execution_timeout
        self.execution_timeout_seconds = _seconds(execution_timeout, "execution_timeout")
        self.owner = owner
        self.trigger_rule = trigger_rule
        self.doc = doc or doc_md
        self.do_xcom_push = do_xcom_push
        self.upstream_edges: dict[str, Edge] = {}
        self._downstream: dict[str, None] = {}
        if not hasattr(self, "fileloc"):  # set by the __init__ wrapper; not when subclassed oddly
            self.fileloc, self.lineno = _source.user_location()
        self.dag: DAG | None = None
        dag = dag or current_dag()
        if dag is not None:
            dag.add_task(self)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None and not hasattr(init, "__wrapped__"):
            cls.__init__ = _apply_defaults(init)  # type: ignore[method-assign]

    def __repr__(self) -> str:
        return f"<Task({type(self).__name__}): {self.task_id}>"

    def execute(self, context: dict[str, Any]) -> Any:
        """Do the work; the return value becomes the task's XCom (must be JSON)."""
        raise NotImplementedError(f"{type(self).__name__} must implement execute()")

    # -- dependencies -----------------------------------------------------------------
    @property
    def upstream_task_ids(self) -> set[str]:
        return set(self.upstream_edges)

    @property
    def downstream_task_ids(self) -> set[str]:
        return set(self._downstream)

    @property
    def upstream_list(self) -> list[BaseOperator]:
        dag = self.dag
        return [dag.task_dict[t] for t in self.upstream_edges if dag and t in dag.task_dict]

    @property
    def downstream_list(self) -> list[BaseOperator]:
        dag = self.dag
        return [dag.task_dict[t] for t in self._downstream if dag and t in dag.task_dict]

    @property
    def output(self) -> XComArg:
        """This task's return value, for passing to another task."""
        return XComArg(self)

    def set_downstream(self, other: DependencyTarget) -> None:
        _, lineno = _source.user_location()
        for op in _operators(other):
            _link(self, op, lineno)

    def set_upstream(self, other: DependencyTarget) -> None:
        _, lineno = _source.user_location()
        for op in _operators(other):
            _link(op, self, lineno)

    def __rshift__(self, other: Any) -> Any:
        self.set_downstream(other)
        return other

    def __lshift__(self, other: Any) -> Any:
        self.set_upstream(other)
        return other

    def __rrshift__(self, other: Any) -> BaseOperator:
        # [a, b] >> self
        self.set_upstream(other)
        return self

    def __rlshift__(self, other: Any) -> BaseOperator:
        # [a, b] << self
        self.set_downstream(other)
        return self

    # -- XComArgs in template fields -----------------------------------------------------
    def _set_xcomarg_dependencies(self) -> None:
        for name in self.template_fields:
            for arg in _find_xcomargs(getattr(self, name, None)):
                _link(arg.operator, self, self.lineno)

    def render_template_fields(self, context: dict[str, Any]) -> None:
        """Replace XComArgs in ``template_fields`` by their values (Jinja comes later)."""
        for name in self.template_fields:
            value = getattr(self, name, None)
            setattr(self, name, _resolve(value, context))

    # -- serialization ------------------------------------------------------------------
    def display_fields(self) -> dict[str, Any]:
        """Operator-specific, JSON-ready fields for the UI (e.g. the bash command)."""
        return {}

    def serialize(self) -> SerializedTask:
        from ledgerflow.common.dagmodel import SerializedTask

        return SerializedTask(
            task_id=self.task_id,
            operator=getattr(self, "custom_operator_name", None) or type(self).__name__,
            upstream_task_ids=tuple(self.upstream_edges),
            trigger_rule=self.trigger_rule,  # type: ignore[arg-type]
            retries=self.retries,
            retry_delay_seconds=self.retry_delay_seconds,
            queue=self.queue,
            pool=self.pool,
            priority_weight=self.priority_weight,
            execution_timeout_seconds=self.execution_timeout_seconds,
            owner=self.owner,
            doc=self.doc,
            lineno=self.lineno,
            template_fields=self.display_fields(),
        )


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
    result = (frozenset(names - {"dag", "task_id"}), positional)
    type.__setattr__(cls, "_lf_init_params", result)
    return result


def _apply_defaults(init: Callable[..., None]) -> Callable[..., None]:
    """Wrap an operator ``__init__``: fill from ``default_args``, record the user line, and
    register XComArg dependencies once the outermost ``__init__`` has finished."""

    @functools.wraps(init)
    def wrapper(self: BaseOperator, *args: Any, **kwargs: Any) -> None:
        if self.__dict__.get("_lf_initializing"):
            init(self, *args, **kwargs)  # a subclass calling super().__init__
            return
        self._lf_initializing = True  # type: ignore[attr-defined]
        try:
            self.fileloc, self.lineno = _source.user_location()
            dag = kwargs.get("dag") or current_dag()
            default_args = dict(dag.default_args) if dag is not None else {}
            default_args.update(kwargs.pop("default_args", None) or {})
            if default_args:
                accepted, positional = _init_params(type(self))
                bound = set(positional[: len(args)])
                for key, value in default_args.items():
                    if key in accepted and key not in kwargs and key not in bound:
                        kwargs[key] = value
            init(self, *args, **kwargs)
        finally:
            self._lf_initializing = False  # type: ignore[attr-defined]
        self._set_xcomarg_dependencies()

    return wrapper


BaseOperator.__init__ = _apply_defaults(BaseOperator.__init__)  # type: ignore[method-assign]


class XComArg:
    """The (future) return value of a task. Passing it to another task makes that task a
    downstream and, at run time, gives it the value."""

    def __init__(self, operator: BaseOperator, key: str = "return_value") -> None:
        self.operator = operator
        self.key = key

    def __repr__(self) -> str:
        return f"XComArg({self.operator!r})"

    def __str__(self) -> str:
        return f"{{{{ task_instance.xcom_pull(task_ids={self.operator.task_id!r}) }}}}"

    def __iter__(self) -> Any:
        raise TypeError("an XComArg is not iterable at DAG definition time")

    def resolve(self, context: dict[str, Any]) -> Any:
        return context["ti"].xcom_pull(task_ids=self.operator.task_id, key=self.key)

    def set_downstream(self, other: DependencyTarget) -> None:
        self.operator.set_downstream(other)

    def set_upstream(self, other: DependencyTarget) -> None:
        self.operator.set_upstream(other)

    def __rshift__(self, other: Any) -> Any:
        self.operator.set_downstream(other)
        return other

    def __lshift__(self, other: Any) -> Any:
        self.operator.set_upstream(other)
        return other

    def __rrshift__(self, other: Any) -> XComArg:
        self.operator.set_upstream(other)
        return self

    def __rlshift__(self, other: Any) -> XComArg:
        self.operator.set_downstream(other)
        return self


DependencyTarget = BaseOperator | XComArg | Iterable[BaseOperator | XComArg]


def _operators(target: Any) -> list[BaseOperator]:
    if isinstance(target, BaseOperator):
        return [target]
    if isinstance(target, XComArg):
        return [target.operator]
    if isinstance(target, list | tuple | set | frozenset):
        ops: list[BaseOperator] = []
        for item in target:
            ops.extend(_operators(item))
        return ops
    raise TypeError(
        f"cannot set a dependency on {target!r}: expected a task, a task's output or a list"
    )


def _link(upstream: BaseOperator, downstream: BaseOperator, lineno: int | None) -> None:
    """Record ``upstream >> downstream``, joining a DAG-less task to the other's DAG."""
    if upstream.dag is not downstream.dag:
        if upstream.dag is None:
            downstream.dag.add_task(upstream)  # type: ignore[union-attr]
        elif downstream.dag is None:
            upstream.dag.add_task(downstream)
        else:
            raise ValueError(
                f"cannot link {upstream!r} (DAG {upstream.dag.dag_id!r}) and {downstream!r} "
                f"(DAG {downstream.dag.dag_id!r}): tasks of different DAGs"
            )
    if upstream.task_id in downstream.upstream_edges:
        return
    downstream.upstream_edges[upstream.task_id] = Edge(next(_edge_seq), lineno)
    upstream._downstream[downstream.task_id] = None


def _find_xcomargs(value: Any) -> list[XComArg]:
    if isinstance(value, XComArg):
        return [value]
    if isinstance(value, list | tuple | set | frozenset):
        return [a for item in value for a in _find_xcomargs(item)]
    if isinstance(value, dict):
        return [a for item in value.values() for a in _find_xcomargs(item)]
    return []


def _resolve(value: Any, context: dict[str, Any]) -> Any:
    if isinstance(value, XComArg):
        return value.resolve(context)
    if isinstance(value, list | tuple | set | frozenset):
        return type(value)(_resolve(item, context) for item in value)
    if isinstance(value, dict):
        return {k: _resolve(v, context) for k, v in value.items()}
    return value


def chain(*tasks: BaseOperator | XComArg | Sequence[BaseOperator | XComArg]) -> None:
    """Set each element downstream of the one before.

    ``chain(a, [b, c], d)`` is ``a >> [b, c] >> d``. Two adjacent lists must have the same
    length and are linked pairwise: ``chain([a, b], [c, d])`` is ``a >> c`` and ``b >> d``.
    """
    _, lineno = _source.user_location()
    for up, down in itertools.pairwise(tasks):
        if isinstance(up, Sequence) and isinstance(down, Sequence):
            if len(up) != len(down):
                raise ValueError(
                    f"chain() needs adjacent lists of equal length, got {len(up)} and {len(down)}"
                )
            for u, d in zip(up, down, strict=True):
                for uo in _operators(u):
                    for do in _operators(d):
                        _link(uo, do, lineno)
        else:
            for uo in _operators(up):
                for do in _operators(down):
                    _link(uo, do, lineno)
