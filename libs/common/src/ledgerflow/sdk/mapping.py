"""Dynamic task mapping: ``Operator.partial(...).expand(...)``, ``expand_kwargs``, and
:func:`unmap`, which the task runner calls to get the concrete operator of one index.

A mapped task is a :class:`MappedOperator` in the DAG: it takes part in dependencies
like any task and serializes with ``SerializedTask.mapped`` (one ``MapSource`` per mapped
argument: the length of a literal list or dict, or the task and key of an XCom). The
core decides how many map indexes there are; the runner re-imports the DAG file and
calls ``unmap(task, map_index, resolve_xcom)``.

``expand`` with several arguments maps over their cross product, the last argument
varying fastest (Airflow's order). A dict maps over its ``(key, value)`` items.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from ledgerflow.sdk import _source
from ledgerflow.sdk.baseoperator import (
    BaseOperator,
    _init_params,
    _Unmapping,
    merged_default_args,
)
from ledgerflow.sdk.dependencies import link
from ledgerflow.sdk.rules import TriggerRule
from ledgerflow.sdk.xcom_arg import XCOM_RETURN_KEY, LiteralValue, XComArg

if TYPE_CHECKING:
    from ledgerflow.common.dagmodel import MapSource, MapSpec

ResolveXCom = Callable[[str, str], Any]


def is_mappable(value: Any) -> bool:
    """An ``XComArg``, or a list/tuple/dict literal (not a string)."""
    return isinstance(value, XComArg | Sequence | dict) and not isinstance(value, str | bytes)


def ensure_xcomarg_return_value(arg: Any) -> None:
    """Airflow maps over return values only: a custom XCom key is refused."""
    for operator, key in XComArg.iter_xcom_references(arg):
        if key != XCOM_RETURN_KEY:
            raise ValueError(f"cannot map over XCom with custom key {key!r} from {operator}")


def prevent_duplicates(
    kwargs1: Mapping[str, Any], kwargs2: Mapping[str, Any], *, fail_reason: str
) -> None:
    duplicated = set(kwargs1).intersection(kwargs2)
    if len(duplicated) == 1:
        raise TypeError(f"{fail_reason} argument: {duplicated.pop()}")
    if duplicated:
        raise TypeError(f"{fail_reason} arguments: {', '.join(sorted(duplicated))}")


def validate_mapping_kwargs(op_class: type, func: str, kwargs: Mapping[str, Any]) -> None:
    """Every argument must be one the operator accepts; ``expand`` values must be mappable."""
    accepted, _ = _init_params(op_class)
    unknown = [name for name in kwargs if name not in accepted]
    for name, value in kwargs.items():
        if func == "expand" and name in accepted and not is_mappable(value):
            raise ValueError(
                f"expand() got an unexpected type {type(value).__name__!r} for keyword "
                f"argument {name!r}"
            )
    if len(unknown) == 1:
        raise TypeError(
            f"{op_class.__name__}.{func}() got an unexpected keyword argument {unknown[0]!r}"
        )
    if unknown:
        names = ", ".join(repr(n) for n in unknown)
        raise TypeError(f"{op_class.__name__}.{func}() got unexpected keyword arguments {names}")


ResolvedValue = LiteralValue
"""A value that came from an XCom: templating hands it over as is, never rendering it
(Airflow does not render mapped values that came from XComs)."""


# ---------------------------------------------------------------------------- expand inputs
class DictOfListsExpandInput:
    """``expand(a=..., b=...)``: one list, dict or XComArg per argument."""

    kind: Final = "expand"

    def __init__(self, value: dict[str, Any]) -> None:
        self.value = value

    def iter_references(self) -> Iterator[tuple[BaseOperator, str]]:
        return XComArg.iter_xcom_references(self.value)

    def sources(self) -> tuple[MapSource, ...]:
        from ledgerflow.common.dagmodel import MapSource

        out = []
        for name, value in self.value.items():
            if isinstance(value, XComArg):
                out.append(MapSource(arg=name, task_id=value.operator.task_id, key=value.key))
            else:
                out.append(MapSource(arg=name, literal_length=len(value)))
        return tuple(out)

    def literal_length(self) -> int | None:
        """The number of map indexes when no argument comes from an XCom."""
        if any(isinstance(v, XComArg) for v in self.value.values()):
            return None
        return math.prod(len(v) for v in self.value.values())

    def values_for(
        self, map_index: int, resolve_xcom: ResolveXCom
    ) -> tuple[dict[str, Any], set[str]]:
        """The arguments of ``map_index``, and the names whose value came from an XCom."""
        resolved: dict[str, Any] = {}
        from_xcom: set[str] = set()
        for name, value in self.value.items():
            if isinstance(value, XComArg):
                value = value.resolve_values(resolve_xcom)
                from_xcom.add(name)
                if isinstance(value, str | bytes) or not isinstance(value, Sequence | dict):
                    raise ValueError(
                        f"expand() argument {name!r} must be a list or dict, got "
                        f"{type(value).__name__} from the XCom"
                    )
            resolved[name] = value
        lengths = {name: len(value) for name, value in resolved.items()}
        total = math.prod(lengths.values())
        if not 0 <= map_index < total:
            raise IndexError(f"map index {map_index} is out of range (the task has {total})")
        index = map_index
        picked: dict[str, Any] = {}
        for name in reversed(list(self.value)):  # the last argument varies fastest
            length = lengths[name]
            position = index % length
            index //= length
            value = resolved[name]
            picked[name] = (
                tuple(list(value.items())[position]) if isinstance(value, dict) else value[position]
            )
        return {name: picked[name] for name in self.value}, from_xcom


class ListOfDictsExpandInput:
    """``expand_kwargs(...)``: an XComArg of a list of dicts, or a list of dicts (or of
    XComArgs each giving a dict)."""

    kind: Final = "expand_kwargs"

    def __init__(self, value: Any) -> None:
        self.value = value

    def iter_references(self) -> Iterator[tuple[BaseOperator, str]]:
        return XComArg.iter_xcom_references(self.value)

    def sources(self) -> tuple[MapSource, ...]:
        from ledgerflow.common.dagmodel import MapSource

        if isinstance(self.value, XComArg):
            return (MapSource(arg="", task_id=self.value.operator.task_id, key=self.value.key),)
        return (MapSource(arg="", literal_length=len(self.value)),)

    def literal_length(self) -> int | None:
        return None if isinstance(self.value, XComArg) else len(self.value)

    def values_for(
        self, map_index: int, resolve_xcom: ResolveXCom
    ) -> tuple[dict[str, Any], set[str]]:
        if isinstance(self.value, XComArg):
            mappings = self.value.resolve_values(resolve_xcom)
            if isinstance(mappings, str | bytes) or not isinstance(mappings, Sequence):
                raise ValueError(
                    f"expand_kwargs() expects a list[dict], not {type(mappings).__name__}"
                )
            mapping = mappings[map_index]
        else:
            mapping = self.value[map_index]
            if isinstance(mapping, XComArg):
                mapping = mapping.resolve_values(resolve_xcom)
        if not isinstance(mapping, Mapping):
            raise ValueError(
                f"expand_kwargs() expects a list[dict], not list[{type(mapping).__name__}]"
            )
        for key in mapping:
            if not isinstance(key, str):
                raise ValueError(
                    "expand_kwargs() input dict keys must all be str, but "
                    f"{key!r} is of type {type(key).__name__}"
                )
        # Airflow renders expand_kwargs values (only expand() XCom values are exempt).
        return dict(mapping), set()


ExpandInput = DictOfListsExpandInput | ListOfDictsExpandInput


# ------------------------------------------------------------------------------- operators
class OperatorPartial:
    """``Operator.partial(task_id=..., ...)``: the fixed arguments of a mapped task."""

    def __init__(self, operator_class: type[BaseOperator], kwargs: dict[str, Any]) -> None:
        self.operator_class = operator_class
        self.kwargs = kwargs
        self.fileloc, self.lineno = _source.user_location()
        self._expanded = False

    @classmethod
    def create(cls, operator_class: type[BaseOperator], kwargs: dict[str, Any]) -> OperatorPartial:
        if "task_id" not in kwargs:
            raise TypeError(f"{operator_class.__name__}.partial() needs a task_id")
        fixed = {
            k: v
            for k, v in kwargs.items()
            if k not in ("task_id", "dag", "task_group", "default_args")
        }
        validate_mapping_kwargs(operator_class, "partial", fixed)
        return cls(operator_class, dict(kwargs))

    def __repr__(self) -> str:
        return f"{self.operator_class.__name__}.partial(task_id={self.kwargs['task_id']!r})"

    def expand(self, **mapped_kwargs: Any) -> MappedOperator:
        if not mapped_kwargs:
            raise TypeError("no arguments to expand against")
        validate_mapping_kwargs(self.operator_class, "expand", mapped_kwargs)
        prevent_duplicates(
            self.kwargs, mapped_kwargs, fail_reason="unmappable or already specified"
        )
        return self._expand(DictOfListsExpandInput(mapped_kwargs))

    def expand_kwargs(self, kwargs: Any, *, strict: bool = True) -> MappedOperator:
        if isinstance(kwargs, Sequence) and not isinstance(kwargs, str):
            for item in kwargs:
                if not isinstance(item, XComArg | Mapping):
                    raise TypeError(f"expected XComArg or list[dict], not {type(kwargs).__name__}")
        elif not isinstance(kwargs, XComArg):
            raise TypeError(f"expected XComArg or list[dict], not {type(kwargs).__name__}")
        return self._expand(ListOfDictsExpandInput(kwargs))

    def _expand(self, expand_input: ExpandInput) -> MappedOperator:
        ensure_xcomarg_return_value(expand_input.value)
        self._expanded = True
        kwargs = dict(self.kwargs)
        task_id = kwargs.pop("task_id")
        dag = kwargs.pop("dag", None)
        task_group = kwargs.pop("task_group", None)
        default_args = kwargs.pop("default_args", None)
        return MappedOperator.build(
            operator_class=self.operator_class,
            task_id=task_id,
            dag=dag,
            task_group=task_group,
            default_args=default_args,
            partial_kwargs=kwargs,
            expand_input=expand_input,
            location=(self.fileloc, self.lineno),
        )


_BASE_PARAMS: frozenset[str] | None = None


def _base_params() -> frozenset[str]:
    global _BASE_PARAMS
    if _BASE_PARAMS is None:
        _BASE_PARAMS, _ = _init_params(BaseOperator)
    return _BASE_PARAMS


class MappedOperator(BaseOperator):
    """A task that runs once per map index. Holds the operator class, the fixed
    arguments and the mapped ones; :func:`unmap` builds the concrete operator."""

    is_mapped = True

    def __init__(
        self,
        *,
        operator_class: type[BaseOperator],
        partial_kwargs: dict[str, Any],
        expand_input: ExpandInput,
        expand_input_attr: str | None = None,
        partial_default_args: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.operator_class_ = operator_class
        self.partial_kwargs = partial_kwargs
        self.expand_input = expand_input
        self.expand_input_attr = expand_input_attr
        super().__init__(**kwargs)
        if self.trigger_rule == TriggerRule.ALWAYS and any(
            True for _ in expand_input.iter_references()
        ):
            raise ValueError(
                "Task-generated mapping within a task using 'expand' is not allowed with "
                "trigger rule 'always'."
            )
        # Everything ``default_args`` would give the concrete operator, fixed now (the
        # runner has no open DAG or group when it unmaps).
        self.unmap_default_args = {
            **merged_default_args(self._dag, self.task_group),
            **(partial_default_args or {}),
        }
        lineno = self.lineno
        for ref, _key in self.expand_input.iter_references():
            link(ref, self, lineno)
        for ref, _key in XComArg.iter_xcom_references(list(partial_kwargs.values())):
            link(ref, self, lineno)

    @classmethod
    def build(
        cls,
        *,
        operator_class: type[BaseOperator],
        task_id: str,
        dag: Any,
        task_group: Any,
        default_args: dict[str, Any] | None,
        partial_kwargs: dict[str, Any],
        expand_input: ExpandInput,
        expand_input_attr: str | None = None,
        location: tuple[str | None, int | None] | None = None,
    ) -> MappedOperator:
        base = _base_params()
        base_kwargs = {k: v for k, v in partial_kwargs.items() if k in base}
        op = cls.__new__(cls)
        if location is not None:
            op.fileloc, op.lineno = location
        op.__init__(  # type: ignore[misc]
            operator_class=operator_class,
            partial_kwargs=partial_kwargs,
            expand_input=expand_input,
            expand_input_attr=expand_input_attr,
            partial_default_args=default_args,
            task_id=task_id,
            dag=dag,
            task_group=task_group,
            default_args=default_args,
            **base_kwargs,
        )
        return op

    def __repr__(self) -> str:
        return f"<Mapped({self.operator_class_.__name__}): {self.task_id}>"

    @property
    def task_type(self) -> str:
        return self.operator_class_.__name__

    @property
    def operator_class(self) -> type[BaseOperator]:
        return self.operator_class_

    @property
    def operator_name(self) -> str:
        return getattr(self.operator_class_, "custom_operator_name", None) or self.task_type

    @property
    def template_fields(self) -> Sequence[str]:  # type: ignore[override]
        return self.operator_class_.template_fields

    @property
    def _is_branch(self) -> bool:  # type: ignore[override]
        return bool(self.operator_class_._is_branch)

    def _set_xcomarg_dependencies(self) -> None:
        pass  # done in __init__ from the partial and mapped arguments

    def display_fields(self) -> dict[str, Any]:
        shown: dict[str, Any] = {}
        mapped = self.expand_input.value if isinstance(self.expand_input.value, dict) else {}
        for name in self.operator_class_.template_fields:
            value = self.partial_kwargs.get(name)
            if name in mapped:
                shown[name] = f"<mapped: {mapped[name]!r}>"[:200]
            elif isinstance(value, str | XComArg):
                shown[name] = str(value)
        return shown

    def map_spec(self) -> MapSpec:
        from ledgerflow.common.dagmodel import MapSpec

        return MapSpec(kind=self.expand_input.kind, sources=self.expand_input.sources())

    def _sensor_spec(self) -> Any:
        from ledgerflow.sdk.sensors import BaseSensorOperator

        if issubclass(self.operator_class_, BaseSensorOperator):
            return BaseSensorOperator.spec_from_kwargs(
                {**self.unmap_default_args, **self.partial_kwargs}
            )
        return None

    def _serialize_fields(self) -> dict[str, Any]:
        fields = super()._serialize_fields()
        fields["mapped"] = self.map_spec()
        return fields

    def unmap(self, resolve: Any = None) -> BaseOperator:
        raise TypeError("use ledgerflow.sdk.mapping.unmap(task, map_index, resolve_xcom)")


def unmap(task: BaseOperator, map_index: int, resolve_xcom: ResolveXCom) -> BaseOperator:
    """The concrete operator of ``map_index`` of a mapped task (``task`` itself when it is
    not mapped).

    ``resolve_xcom(task_id, key)`` returns an upstream's XCom; for a mapped upstream, the
    list of all its map indexes' values in map-index order. The operator is built with
    the fixed arguments, the mapped ones of this index, and the DAG's and groups'
    ``default_args``; it has the mapped task's id, DAG, group and relatives but is not
    added to the DAG. Values taken from XComs by ``expand`` are wrapped so that
    templating passes them through unrendered.
    """
    if not isinstance(task, MappedOperator):
        return task
    mapped, from_xcom = task.expand_input.values_for(map_index, resolve_xcom)
    kwargs = dict(task.partial_kwargs)
    if task.expand_input_attr is not None:
        base = dict(kwargs.get(task.expand_input_attr) or {})
        prevent_duplicates(base, mapped, fail_reason="mapping already partial")
        kwargs[task.expand_input_attr] = {**base, **mapped}
    else:
        kwargs.update(mapped)
    previous = _Unmapping.active
    _Unmapping.active = True
    try:
        op = task.operator_class_(
            task_id=task.task_id, default_args=task.unmap_default_args, **kwargs
        )
    finally:
        _Unmapping.active = previous
    _protect_xcom_values(op, task, mapped, from_xcom)
    op._dag = task._dag
    op.task_group = task.task_group
    op.upstream_edges = dict(task.upstream_edges)
    op._downstream = dict(task._downstream)
    op.is_setup = task.is_setup
    op.is_teardown = task.is_teardown
    op.on_failure_fail_dagrun = task.on_failure_fail_dagrun
    op.trigger_rule = task.trigger_rule
    op.fileloc, op.lineno = task.fileloc, task.lineno
    op.map_index = map_index
    return op


def _protect_xcom_values(
    op: BaseOperator, task: MappedOperator, mapped: dict[str, Any], from_xcom: set[str]
) -> None:
    if not from_xcom:
        return
    fields = set(op.template_fields)
    if task.expand_input_attr is not None:
        if task.expand_input_attr not in fields:
            return
        container = getattr(op, task.expand_input_attr, None)
        if isinstance(container, dict):
            for name in from_xcom:
                if name in container and container[name] is mapped[name]:
                    container[name] = ResolvedValue(mapped[name])
        return
    for name in from_xcom:
        if name in fields and getattr(op, name, None) is mapped[name]:
            object.__setattr__(op, name, ResolvedValue(mapped[name]))
