"""DAG params: ``Param`` (a default plus a JSON schema), ``ParamsDict`` and ``DagParam``.

As in Airflow, every keyword of ``Param`` other than ``default`` and ``description`` is a
JSON-schema keyword (``type``, ``enum``, ``minimum``, ``title``, ``format``, ...).
Serialization keeps the defaults (``SerializedDag.params``) and one schema per param
(``SerializedDag.param_schemas``, with ``description`` added); a param without a default
has a schema but no entry in ``params``, which is how a reader tells "required" from
"defaults to None". ``jsonschema`` is imported only when a value is validated.
"""

from __future__ import annotations

import copy
import json
from collections.abc import ItemsView, Iterator, Mapping, MutableMapping, ValuesView
from typing import TYPE_CHECKING, Any

from ledgerflow.sdk.exceptions import AirflowException, ParamValidationError
from ledgerflow.sdk.xcom_arg import ResolveMixin

if TYPE_CHECKING:
    from ledgerflow.sdk.dag_definition import DAG


class ArgNotSet:
    """The type of :data:`NOTSET`: "no value given", distinct from ``None``."""

    _instance: ArgNotSet | None = None

    def __new__(cls) -> ArgNotSet:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NOTSET"

    def __bool__(self) -> bool:
        return False

    def __copy__(self) -> ArgNotSet:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> ArgNotSet:
        return self


NOTSET: Any = ArgNotSet()


class Param:
    """A param's default value and the JSON schema its values must match.

    ``Param(5, type="integer", minimum=1, description="how many")``. Without a schema any
    JSON value is valid. ``schema=`` may be given instead of the keywords.
    """

    def __init__(self, default: Any = NOTSET, description: str | None = None, **kwargs: Any):
        if default is not NOTSET:
            self._check_json(default)
        self.value = default
        self.description = description
        self.schema: dict[str, Any] = kwargs.pop("schema") if "schema" in kwargs else kwargs

    def __copy__(self) -> Param:
        return Param(self.value, self.description, schema=self.schema)

    def __repr__(self) -> str:
        return f"Param({self.value!r}, description={self.description!r}, schema={self.schema!r})"

    @staticmethod
    def _check_json(value: Any) -> None:
        try:
            json.dumps(value)
        except Exception:
            raise ParamValidationError(
                f"All provided parameters must be json-serializable. The value '{value}' is "
                "not serializable."
            ) from None

    @property
    def has_value(self) -> bool:
        return self.value is not NOTSET and self.value is not None

    def resolve(self, value: Any = NOTSET, suppress_exception: bool = False) -> Any:
        """Validate ``value`` (or the default) against the schema and return it."""
        if value is not NOTSET:
            self._check_json(value)
        final = self.value if value is NOTSET else value
        if final is NOTSET:
            if suppress_exception:
                return None
            raise ParamValidationError("No value passed and Param has no default value")
        if self.schema:
            import jsonschema  # only when validating

            try:
                jsonschema.validate(final, self.schema, format_checker=jsonschema.FormatChecker())
            except jsonschema.ValidationError as err:
                if suppress_exception:
                    return None
                raise ParamValidationError(str(err.message)) from None
        self.value = final
        return final

    def json_schema(self) -> dict[str, Any]:
        """The schema as serialized: the keywords, plus ``description`` when given."""
        schema = dict(self.schema)
        if self.description is not None and "description" not in schema:
            schema["description"] = self.description
        return schema

    def dump(self) -> dict[str, Any]:
        return {
            "value": None if self.value is NOTSET else self.value,
            "description": self.description,
            "schema": self.schema,
        }

    serialize = dump


class ParamsDict(MutableMapping[str, Any]):
    """A dict of :class:`Param`: plain values are wrapped, reads return validated values.

    ``dag.params["x"]`` is the value (validated); ``dag.params.get_param("x")`` the
    :class:`Param`.
    """

    __slots__ = ("_dict", "suppress_exception")

    def __init__(
        self, dict_obj: Mapping[str, Any] | None = None, suppress_exception: bool = False
    ) -> None:
        source = dict_obj._dict if isinstance(dict_obj, ParamsDict) else (dict_obj or {})
        self._dict: dict[str, Param] = {
            k: v if isinstance(v, Param) else Param(v) for k, v in source.items()
        }
        self.suppress_exception = suppress_exception

    def __bool__(self) -> bool:
        return bool(self._dict)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ParamsDict):
            return self.dump() == other.dump()
        if isinstance(other, dict):
            return self.dump() == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __copy__(self) -> ParamsDict:
        return ParamsDict(self._dict, self.suppress_exception)

    def __deepcopy__(self, memo: dict[int, Any]) -> ParamsDict:
        return ParamsDict(copy.deepcopy(self._dict, memo), self.suppress_exception)

    def __contains__(self, key: object) -> bool:
        return key in self._dict

    def __len__(self) -> int:
        return len(self._dict)

    def __delitem__(self, key: str) -> None:
        del self._dict[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict)

    def __repr__(self) -> str:
        return repr(self.dump())

    def __setitem__(self, key: str, value: Any) -> None:
        if isinstance(value, Param):
            self._dict[key] = value
        elif key in self._dict:
            try:
                self._dict[key].resolve(value=value, suppress_exception=self.suppress_exception)
            except ParamValidationError as ve:
                raise ParamValidationError(f"Invalid input for param {key}: {ve}") from None
        else:
            self._dict[key] = Param(value)

    def __getitem__(self, key: str) -> Any:
        return self._dict[key].resolve(suppress_exception=self.suppress_exception)

    def get_param(self, key: str) -> Param:
        return self._dict[key]

    def items(self) -> ItemsView[str, Param]:
        """``(name, Param)`` pairs, as Airflow's ``ParamsDict.items()``."""
        return ItemsView(self._dict)

    def values(self) -> ValuesView[Param]:
        return ValuesView(self._dict)

    def update(self, *args: Any, **kwargs: Any) -> None:
        if len(args) == 1 and not kwargs and isinstance(args[0], ParamsDict):
            self._dict.update(args[0]._dict)
            return
        super().update(*args, **kwargs)

    def dump(self) -> dict[str, Any]:
        """Values, without raising (a failing param dumps as ``None``)."""
        return {k: v.resolve(suppress_exception=True) for k, v in self._dict.items()}

    def validate(self) -> dict[str, Any]:
        """Every value, validated; raises :class:`ParamValidationError` naming the param."""
        resolved = {}
        for k, v in self._dict.items():
            try:
                resolved[k] = v.resolve(suppress_exception=self.suppress_exception)
            except ParamValidationError as ve:
                raise ParamValidationError(f"Invalid input for param {k}: {ve}") from None
        return resolved

    def defaults(self) -> dict[str, Any]:
        """The params that have a default, without validating (for serialization)."""
        return {k: v.value for k, v in self._dict.items() if v.value is not NOTSET}

    def schemas(self) -> dict[str, dict[str, Any]]:
        """One JSON schema per param (empty when the param has none)."""
        return {k: v.json_schema() for k, v in self._dict.items()}

    serialize = dump


class DagParam(ResolveMixin):
    """A reference to a DAG param, resolved when the task runs.

    ``@dag`` functions receive one per argument; ``dag.param("name", default)`` makes one.
    At run time it is the run's conf value, else the default, else ``params[name]``.
    """

    def __init__(self, current_dag: DAG, name: str, default: Any = NOTSET) -> None:
        if default is not NOTSET:
            current_dag.params[name] = default
        self._name = name
        self._default = default
        self.current_dag = current_dag

    def __repr__(self) -> str:
        return f"DagParam({self._name!r})"

    def resolve(self, context: Mapping[str, Any]) -> Any:
        dag_run = context.get("dag_run")
        conf = getattr(dag_run, "conf", None)
        if conf and self._name in conf:
            return conf[self._name]
        if self._default is not NOTSET and not isinstance(self._default, Param):
            return self._default
        params = context.get("params") or {}
        if self._name in params:
            return params[self._name]
        raise AirflowException(f"No value could be resolved for parameter {self._name}")


def process_params(
    dag: DAG,
    task: Any,
    dagrun_conf: Mapping[str, Any] | None,
    *,
    suppress_exception: bool = False,
) -> dict[str, Any]:
    """The ``params`` a task sees: DAG params, then task params, then the run's conf, all
    validated (Airflow's ``process_params``; conf overrides params)."""
    params = ParamsDict(suppress_exception=suppress_exception)
    params.update(dag.params)
    task_params = getattr(task, "params", None)
    if task_params:
        params.update(task_params)
    if dagrun_conf:
        params.update(dict(dagrun_conf))
    return params.validate()
