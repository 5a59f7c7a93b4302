"""``XComArg``: a task's (future) output, passed to other tasks at definition time.

An ``XComArg`` in another task's arguments (template fields, ``@task`` arguments,
``expand()``) makes that task a downstream and is replaced by the value when the task
runs. Objects that are replaced at run time implement :class:`ResolveMixin`; the
templating code must return ``value.resolve(context)`` for them and not render the result
(a value from another task is data, never a template).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ledgerflow.sdk.dependencies import DependencyMixin

if TYPE_CHECKING:
    from ledgerflow.sdk.baseoperator import BaseOperator

XCOM_RETURN_KEY = "return_value"


class ResolveMixin:
    """Something in a task's arguments that is replaced by a value when the task runs."""

    def iter_references(self) -> Iterator[tuple[BaseOperator, str]]:
        """``(task, key)`` of every XCom this depends on."""
        return iter(())

    def resolve(self, context: Mapping[str, Any]) -> Any:
        raise NotImplementedError


class XComArg(ResolveMixin, DependencyMixin):
    """The XCom ``key`` (default: the return value) of ``operator``.

    ``task.output``, a ``@task`` call's result, or ``XComArg(task)``. ``output["k"]`` is
    the XCom with key ``k`` (``multiple_outputs``); ``output.map(fn)`` applies ``fn`` to
    each element when a mapped task consumes it.
    """

    def __init__(self, operator: BaseOperator, key: str = XCOM_RETURN_KEY) -> None:
        self.operator = operator
        self.key = key

    def __repr__(self) -> str:
        if self.key == XCOM_RETURN_KEY:
            return f"XComArg({self.operator!r})"
        return f"XComArg({self.operator!r}, {self.key!r})"

    def __str__(self) -> str:
        """A Jinja expression pulling the value, so ``f"echo {task.output}"`` works."""
        parts = [f"task_ids='{self.operator.task_id}'"]
        if self.operator._dag is not None:
            parts.append(f"dag_id='{self.operator._dag.dag_id}'")
        parts.append(f"key='{self.key}'")
        return "{{ task_instance.xcom_pull(" + ", ".join(parts) + ") }}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, XComArg) or type(other) is not type(self):
            return NotImplemented
        return self.operator is other.operator and self.key == other.key

    def __hash__(self) -> int:
        return hash((id(self.operator), self.key))

    def __getitem__(self, key: str) -> XComArg:
        """The XCom with this key (``@task(multiple_outputs=True)`` pushes one per key)."""
        if not isinstance(key, str):
            raise ValueError(f"XComArg only supports str lookup, received {type(key).__name__}")
        return XComArg(self.operator, key)

    def __iter__(self) -> Iterator[Any]:
        raise TypeError("'XComArg' object is not iterable")

    def __bool__(self) -> bool:
        return True

    def _dependency_nodes(self, as_downstream: bool) -> list[Any]:
        return [self.operator]

    def iter_references(self) -> Iterator[tuple[BaseOperator, str]]:
        yield self.operator, self.key

    def resolve(self, context: Mapping[str, Any]) -> Any:
        """The value, from ``context["ti"].xcom_pull`` (for a mapped task: every map
        index's value, in map-index order)."""
        return context["ti"].xcom_pull(task_ids=self.operator.task_id, key=self.key)

    def resolve_values(self, resolve_xcom: Callable[[str, str], Any]) -> Any:
        """The value through the runner's lookup (used when unmapping)."""
        return resolve_xcom(self.operator.task_id, self.key)

    # -- transforms ---------------------------------------------------------------------
    def map(self, f: Callable[[Any], Any]) -> MapXComArg:
        """Apply ``f`` to each element when the value is consumed (Airflow's
        ``XComArg.map``)."""
        return MapXComArg(self, [f])

    def zip(self, *others: XComArg, fillvalue: Any = None) -> XComArg:
        raise NotImplementedError("XComArg.zip() is not supported by ledgerflow yet")

    def concat(self, *others: XComArg) -> XComArg:
        raise NotImplementedError("XComArg.concat() is not supported by ledgerflow yet")

    # -- setup / teardown --------------------------------------------------------------
    def as_setup(self) -> XComArg:
        self.operator.as_setup()
        return self

    def as_teardown(
        self, *, setups: Any = None, on_failure_fail_dagrun: bool | None = None
    ) -> XComArg:
        from ledgerflow.sdk.params import NOTSET

        self.operator.as_teardown(
            setups=NOTSET if setups is None else setups,
            on_failure_fail_dagrun=NOTSET
            if on_failure_fail_dagrun is None
            else on_failure_fail_dagrun,
        )
        return self

    def __enter__(self) -> XComArg:
        self.operator.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.operator.__exit__(*exc)

    @staticmethod
    def iter_xcom_references(arg: Any) -> Iterator[tuple[BaseOperator, str]]:
        """Every ``(task, key)`` referenced by ``arg``, looking inside lists and dicts."""
        if isinstance(arg, ResolveMixin):
            yield from arg.iter_references()
        elif isinstance(arg, list | tuple | set | frozenset):
            for item in arg:
                yield from XComArg.iter_xcom_references(item)
        elif isinstance(arg, dict):
            for item in arg.values():
                yield from XComArg.iter_xcom_references(item)

    @staticmethod
    def apply_upstream_relationship(op: BaseOperator, arg: Any) -> None:
        """Make every task ``arg`` refers to an upstream of ``op``."""
        from ledgerflow.sdk.dependencies import link

        for ref, _ in XComArg.iter_xcom_references(arg):
            link(ref, op, op.lineno)


PlainXComArg = XComArg


class LiteralValue(ResolveMixin):
    """A value passed through templating as is, never rendered (``literal(value)``)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"LiteralValue({self.value!r})"

    def iter_references(self) -> Iterator[tuple[BaseOperator, str]]:
        return iter(())

    def resolve(self, context: Mapping[str, Any]) -> Any:
        return self.value


def literal(value: Any) -> LiteralValue:
    """Airflow's ``literal()``: keep ``value`` (e.g. a string with ``{{``) unrendered."""
    return LiteralValue(value)


class MapXComArg(XComArg):
    """``xcom_arg.map(fn)``: the same XCom, each element passed through ``fn``."""

    def __init__(self, arg: XComArg, callables: Sequence[Callable[[Any], Any]]) -> None:
        for f in callables:
            if not callable(f):
                raise ValueError(f"XComArg.map() expects a callable, got {f!r}")
        super().__init__(arg.operator, arg.key)
        self.arg = arg
        self.callables = list(callables)

    def __repr__(self) -> str:
        return f"{self.arg!r}.map([{len(self.callables)} functions])"

    def map(self, f: Callable[[Any], Any]) -> MapXComArg:
        return MapXComArg(self.arg, [*self.callables, f])

    def __getitem__(self, key: str) -> XComArg:
        raise TypeError("cannot look up a key of a mapped XComArg")

    def resolve(self, context: Mapping[str, Any]) -> Any:
        return MapResult(self.arg.resolve(context), self.callables)

    def resolve_values(self, resolve_xcom: Callable[[str, str], Any]) -> Any:
        return MapResult(self.arg.resolve_values(resolve_xcom), self.callables)


class MapResult(Sequence[Any]):
    """A list or dict seen through ``XComArg.map`` functions, applied lazily per item
    (a dict is seen as its ``(key, value)`` items)."""

    def __init__(self, value: Any, callables: Sequence[Callable[[Any], Any]]) -> None:
        if isinstance(value, dict):
            value = list(value.items())
        elif not isinstance(value, Sequence) or isinstance(value, str | bytes):
            raise ValueError(f"XComArg.map() needs a list or dict, not {type(value).__name__}")
        self.value = value
        self.callables = list(callables)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        value = self.value[index]
        for f in self.callables:
            value = f(value)
        return value

    def __len__(self) -> int:
        return len(self.value)

    def __repr__(self) -> str:
        return f"MapResult({list(self)!r})"
