"""The context a task's ``execute(context)`` receives, with Airflow 3's keys.

Everything comes from the runner request (ADR 0006): the run, the attempt, the XComs of
the task's ancestors, variables and connections. Nothing here does I/O.

Differences from Airflow, because a task asks a server nothing but other runs' states:

- ``xcom_pull`` sees the XComs of the task's ancestors only (the executor ships those);
  any other task, another DAG, another run or ``include_prior_dates`` gives the default.
- A mapped upstream pulled on its own gives the list of its values even when it has one
  map index (Airflow 3 unwraps a one-element result, which breaks ``sum(values)``).
- ``prev_*_success`` keys are ``None`` and ``triggering_asset_events`` is empty.

``ti.external_task_state(...)`` (and ``external_task_map_states`` /
``external_task_group_states``, what ``ExternalTaskSensor`` pokes with) ask the API with
the attempt's task token (:mod:`ledgerflow.sdk.execution_api`), as Airflow 3's task SDK
asks its API server.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ledgerflow.sdk.baseoperator import BaseOperator
    from ledgerflow.sdk.dag_definition import DAG
    from ledgerflow.sdk.execution_api import TaskApiClient

_current: list[dict[str, Any]] = []

XCOM_RETURN_KEY = "return_value"


class _NotSet:
    def __repr__(self) -> str:
        return "NOTSET"


NOTSET: Any = _NotSet()


def get_current_context() -> dict[str, Any]:
    """The context of the task running in this process (Airflow's function of that name)."""
    if not _current:
        raise RuntimeError("get_current_context() works only while a task is running")
    return _current[-1]


class XComNotSerializable(TypeError):
    """A value pushed as XCom is not JSON. Retries cannot help."""

    retryable = False


def json_text(value: Any) -> str:
    """Strict JSON (no NaN or Infinity, which other readers reject); ``TypeError`` or
    ``ValueError`` when ``value`` is not JSON."""
    return json.dumps(value, allow_nan=False)


class RuntimeTaskInstance:
    """``context["ti"]``: who this attempt is, its XComs in and out, and what it reports.

    ``follow_task_ids`` (branch operators) and ``short_circuit`` (``None``, ``"direct"``
    or ``"all"``; short-circuit operators) are set by the task and end up in the outcome.
    ``max_tries`` is Airflow's: the number of retries, so an attempt is the last one when
    ``try_number > max_tries``.
    """

    def __init__(
        self,
        *,
        dag_id: str,
        task_id: str,
        run_id: str,
        try_number: int,
        map_index: int,
        task: BaseOperator | None,
        xcoms: Iterable[Mapping[str, Any]] = (),
        max_tries: int = 0,
        dag: DAG | None = None,
        start_date: datetime | None = None,
        api: TaskApiClient | None = None,
    ) -> None:
        self.dag_id = dag_id
        self.task_id = task_id
        self.run_id = run_id
        self.try_number = try_number
        self.map_index = map_index
        self.max_tries = max_tries
        self.task = task
        self.dag = dag
        self.hostname = os.uname().nodename
        self.state = "running"
        self.start_date = start_date or datetime.now(UTC)
        self.end_date: datetime | None = None
        self.log_url: str | None = None
        self.rendered_map_index: str | None = None
        self.follow_task_ids: list[str] | str | None = None
        self.short_circuit: str | None = None
        self.context: dict[str, Any] | None = None
        # (task_id, key) -> {map_index: value}
        self._xcoms: dict[tuple[str, str], dict[int, Any]] = {}
        for entry in xcoms:
            self._store(
                str(entry["task_id"]),
                str(entry.get("key", XCOM_RETURN_KEY)),
                int(entry.get("map_index", -1)),
                entry.get("value"),
            )
        # Keys pushed by this attempt, in push order.
        self.pushed: dict[str, Any] = {}
        # The API, for other runs' states (None: the request had no api_url/api_token).
        self._api = api

    def __repr__(self) -> str:
        index = f" map_index={self.map_index}" if self.map_index >= 0 else ""
        return (
            f"<TaskInstance: {self.dag_id}.{self.task_id} {self.run_id}{index} "
            f"[{self.state}] try {self.try_number}>"
        )

    @property
    def operator(self) -> str:
        return type(self.task).__name__

    @property
    def is_mapped(self) -> bool:
        return self.map_index >= 0

    def _store(self, task_id: str, key: str, map_index: int, value: Any) -> None:
        self._xcoms.setdefault((task_id, key), {})[map_index] = value

    def _upstream_is_mapped(self, task_id: str, values: Mapping[int, Any]) -> bool:
        task = self.dag.task_dict.get(task_id) if self.dag is not None else None
        if task is not None and getattr(task, "is_mapped", False):
            return True
        return any(i >= 0 for i in values)

    def resolve_xcom(self, task_id: str, key: str = XCOM_RETURN_KEY) -> Any:
        """The value a mapped task expands over: the XCom of ``task_id``, or the list of
        all its map indexes' values when it is mapped. ``KeyError`` when it is absent."""
        values = self._xcoms.get((task_id, key))
        if not values:
            raise KeyError(
                f"task {self.task_id!r} needs XCom {key!r} of task {task_id!r}, which the "
                "request does not carry (the upstream pushed nothing, or is not an ancestor)"
            )
        if self._upstream_is_mapped(task_id, values):
            return [values[i] for i in sorted(values) if i >= 0]
        return values.get(-1)

    def xcom_pull(
        self,
        task_ids: str | Iterable[str] | None = None,
        dag_id: str | None = None,
        key: str = XCOM_RETURN_KEY,
        include_prior_dates: bool = False,
        *,
        map_indexes: int | Iterable[int] | None = NOTSET,
        default: Any = None,
        run_id: str | None = None,
    ) -> Any:
        """XComs of upstream tasks, with Airflow 3's rules.

        - ``task_ids``: one id (or ``None``: this task) gives one value, a list gives a list.
        - Without ``map_indexes``, every map index is pulled: a mapped task gives the list
          of its indexes' values (in index order), an unmapped one its value. With a list
          of task ids, the values are concatenated in order.
        - With ``map_indexes`` (an int, ``None`` meaning unmapped, or a list), exactly those
          indexes: one task and one index give one value, anything else a list.
        - Whatever is missing is ``default``.
        """
        foreign = (dag_id is not None and dag_id != self.dag_id) or (
            run_id is not None and run_id != self.run_id
        )
        single_task = task_ids is None or isinstance(task_ids, str)
        if task_ids is None:
            ids = [self.task_id]
        elif isinstance(task_ids, str):
            ids = [task_ids]
        else:
            ids = [str(t) for t in task_ids]

        if map_indexes is NOTSET:
            result: list[Any] = []
            for tid in ids:
                values = None if foreign else self._xcoms.get((tid, key))
                if not values:
                    result.append(default)
                elif tid == self.task_id and self.map_index >= 0:
                    # A mapped task pulling its own push: its own index.
                    result.append(values.get(self.map_index, default))
                elif self._upstream_is_mapped(tid, values):
                    mapped = [values[i] for i in sorted(values) if i >= 0]
                    if single_task:
                        # Deliberately a list even for one index (Airflow 3 would unwrap
                        # a one-element list, which breaks ``sum(values)`` at length 1).
                        return mapped
                    result.extend(mapped)
                else:
                    result.append(values.get(-1, default))
            return result[0] if single_task else result

        single_index = map_indexes is None or isinstance(map_indexes, int)
        if map_indexes is None or isinstance(map_indexes, int):
            indexes: list[int] = [-1 if map_indexes is None else map_indexes]
        elif isinstance(map_indexes, Iterable):
            indexes = [int(i) for i in map_indexes]
        else:
            raise TypeError(
                "map_indexes must be an int, an iterable of ints or None, "
                f"not {type(map_indexes).__name__}"
            )
        pulled: list[Any] = []
        for tid in ids:
            values = {} if foreign else self._xcoms.get((tid, key), {})
            pulled.extend(values.get(i, default) for i in indexes)
        return pulled[0] if single_task and single_index else pulled

    def xcom_push(self, key: str, value: Any) -> None:
        """Make ``value`` (JSON) available to downstream tasks under ``key``.

        ``"return_value"`` sets the task's return value (unless ``execute`` then returns
        something else). The value is copied now, so later changes to it are not seen.
        """
        if not isinstance(key, str) or not key:
            raise ValueError(f"an XCom key must be a non-empty string, not {key!r}")
        try:
            text = json_text(value)
        except (TypeError, ValueError) as e:
            raise XComNotSerializable(
                f"XCom {key!r} of task {self.task_id!r} is not JSON-serializable "
                f"({type(value).__name__}: {e}); push plain data "
                "(dict, list, str, int, float, bool, None)"
            ) from None
        copy = json.loads(text)
        self.pushed[key] = copy
        self._store(self.task_id, key, self.map_index, copy)

    def get_template_context(self) -> dict[str, Any]:
        """The attempt's context (the same dict ``execute`` receives)."""
        if self.context is None:
            raise RuntimeError("the context of this task instance is not built yet")
        return self.context

    def get_dagrun(self) -> DagRunInfo:
        return self.get_template_context()["dag_run"]  # type: ignore[no-any-return]

    def _task_api(self) -> TaskApiClient:
        if self._api is None:
            from ledgerflow.sdk.execution_api import NOT_CONFIGURED, TaskApiNotConfigured

            raise TaskApiNotConfigured(NOT_CONFIGURED)
        return self._api

    def _external_run(self, dag_id: str, logical_date: datetime | None) -> Any:
        when = logical_date if logical_date is not None else self._own_logical_date()
        if when is None:
            return None  # a run without a logical date has no counterpart to look up
        return self._task_api().dag_run_at(dag_id, when)

    def _own_logical_date(self) -> datetime | None:
        context = self.context or {}
        value = context.get("logical_date")
        return value if isinstance(value, datetime) else None

    def external_task_map_states(
        self, dag_id: str, task_id: str, logical_date: datetime | None = None
    ) -> list[str | None]:
        """The states of ``task_id`` in the run of ``dag_id`` at ``logical_date`` (this
        run's when ``None``): one per map index of a mapped task (the placeholder's while
        it is not expanded yet), one for an unmapped task; ``[]`` when there is no such
        run or task instance. Asks the API (``TaskApiError`` when it cannot answer)."""
        run = self._external_run(dag_id, logical_date)
        if run is None:
            return []
        tis = self._task_api().task_instances(dag_id, str(run["dag_run_id"]), task_id)
        return [ti.get("state") for ti in sorted(tis, key=lambda t: int(t.get("map_index", -1)))]

    def external_task_group_states(
        self, dag_id: str, task_group_id: str, logical_date: datetime | None = None
    ) -> dict[str, list[str | None]]:
        """``{task_id: states by map index}`` of the tasks of task group
        ``task_group_id`` (ids ``<group>.<...>``) in the run of ``dag_id`` at
        ``logical_date``; ``{}`` when there is no such run or the group has no task."""
        run = self._external_run(dag_id, logical_date)
        if run is None:
            return {}
        prefix = f"{task_group_id}."
        found: dict[str, list[tuple[int, str | None]]] = {}
        for ti in self._task_api().task_instances(dag_id, str(run["dag_run_id"])):
            tid = str(ti.get("task_id"))
            if tid.startswith(prefix):
                found.setdefault(tid, []).append((int(ti.get("map_index", -1)), ti.get("state")))
        return {tid: [state for _, state in sorted(pairs)] for tid, pairs in found.items()}

    def external_task_state(
        self, dag_id: str, task_id: str | None, logical_date: datetime | None = None
    ) -> str | None:
        """The state of task ``task_id`` in the run of DAG ``dag_id`` at
        ``logical_date`` (this run's when ``None``), or of that run itself when
        ``task_id`` is ``None``; ``None`` when there is no such run or task instance.

        A mapped task's state is its map indexes' common state, or ``None`` while they
        differ (use :meth:`external_task_map_states` for each). Asks the API with the
        attempt's token (``TaskApiError`` when it cannot answer).
        """
        if task_id is None:
            run = self._external_run(dag_id, logical_date)
            return None if run is None else run.get("state")
        states = set(self.external_task_map_states(dag_id, task_id, logical_date))
        return states.pop() if len(states) == 1 else None


class DagRunInfo:
    """``context["dag_run"]``: the run this attempt belongs to."""

    def __init__(
        self,
        *,
        dag_id: str,
        run_id: str,
        logical_date: datetime | None,
        conf: dict[str, Any],
        run_type: str = "manual",
        data_interval_start: datetime | None = None,
        data_interval_end: datetime | None = None,
    ) -> None:
        self.dag_id = dag_id
        self.run_id = run_id
        self.run_type = run_type
        self.logical_date = logical_date
        self.data_interval_start = data_interval_start
        self.data_interval_end = data_interval_end
        self.run_after = logical_date
        self.conf = conf
        self.state = "running"
        # Not in the request (a task has no server to ask): None, as for a run that has
        # none of them.
        self.start_date: datetime | None = None
        self.end_date: datetime | None = None
        self.queued_at: datetime | None = None
        self.note: str | None = None
        self.triggering_user_name: str | None = None
        self.consumed_asset_events: list[Any] = []

    def __repr__(self) -> str:
        return f"<DagRun {self.dag_id} @ {self.logical_date}: {self.run_id}, {self.run_type}>"


class VariableAccessor:
    """``var.value.NAME`` / ``var.json.NAME`` / ``var.value.get(NAME, default)``."""

    def __init__(self, *, deserialize_json: bool) -> None:
        self._deserialize_json = deserialize_json

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):
            raise AttributeError(key)
        from ledgerflow.sdk.models import Variable

        return Variable.get(key, deserialize_json=self._deserialize_json)

    def get(self, key: str, default_var: Any = NOTSET) -> Any:
        from ledgerflow.sdk.models import _NOTSET, Variable

        default = _NOTSET if default_var is NOTSET else default_var
        return Variable.get(key, default_var=default, deserialize_json=self._deserialize_json)

    def __contains__(self, key: str) -> bool:
        return self.get(key, None) is not None

    def __repr__(self) -> str:
        return f"<var.{'json' if self._deserialize_json else 'value'}>"


class ConnectionAccessor:
    """``conn.CONN_ID`` / ``conn.get(CONN_ID)``: a :class:`~ledgerflow.sdk.models.Connection`."""

    def __getattr__(self, conn_id: str) -> Any:
        if conn_id.startswith("__"):
            raise AttributeError(conn_id)
        from ledgerflow.sdk.models import get_connection

        return get_connection(conn_id)

    def get(self, conn_id: str, default_conn: Any = None) -> Any:
        from ledgerflow.sdk.models import get_connection

        try:
            return get_connection(conn_id)
        except Exception:
            return default_conn

    def __repr__(self) -> str:
        return "<conn>"


class MacrosAccessor:
    """``macros``: :mod:`ledgerflow.sdk.macros`, imported on first use."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        from ledgerflow.sdk import macros

        return getattr(macros, name)

    def __repr__(self) -> str:
        return "<macros>"


def _param_defaults(params: Any) -> dict[str, Any]:
    """Plain values of a params mapping whose values may be ``Param`` objects."""
    if not params:
        return {}
    values: dict[str, Any] = {}
    get_param = getattr(params, "get_param", None)
    for name in list(params.keys()):
        if get_param is not None:  # Airflow's ParamsDict: the Param, not its resolved value
            raw = get_param(name)
        elif isinstance(params, dict):
            raw = dict.__getitem__(params, name)
        else:
            raw = params[name]
        if hasattr(raw, "schema") and hasattr(raw, "value"):  # a Param
            if type(raw.value).__name__ == "ArgNotSet":  # no default: conf must give it
                continue
            raw = raw.value
        values[name] = raw
    return values


def build_context(
    *,
    dag: DAG,
    task: BaseOperator,
    run_id: str,
    try_number: int,
    map_index: int,
    logical_date: datetime | None,
    conf: dict[str, Any],
    upstream_xcoms: Mapping[str, Any] | None = None,
    xcoms: Iterable[Mapping[str, Any]] = (),
    max_tries: int | None = None,
    run_type: str = "manual",
    data_interval_start: datetime | None = None,
    data_interval_end: datetime | None = None,
    test_mode: bool = False,
    api_url: str | None = None,
    api_token: str | None = None,
) -> dict[str, Any]:
    """Airflow 3's context keys for one attempt.

    ``params`` are the DAG's params, then the task's, overridden by the run's conf
    (validation is the API's job). ``max_tries`` is the protocol's (retries + 1).
    ``upstream_xcoms`` is the old ``{task_id: return_value}`` form; ``xcoms`` wins.
    ``api_url`` and ``api_token`` (both, or neither) let ``ti`` read other runs' states.
    """
    entries: list[Mapping[str, Any]] = [
        {"task_id": t, "key": XCOM_RETURN_KEY, "map_index": -1, "value": v}
        for t, v in (upstream_xcoms or {}).items()
    ]
    entries.extend(xcoms)
    retries = int(getattr(task, "retries", 0) or 0)
    ti = RuntimeTaskInstance(
        dag_id=dag.dag_id,
        task_id=task.task_id,
        run_id=run_id,
        try_number=try_number,
        map_index=map_index,
        task=task,
        xcoms=entries,
        max_tries=(max_tries - 1) if max_tries is not None else retries,
        dag=dag,
        api=_task_api_client(api_url, api_token),
    )
    params = _param_defaults(getattr(dag, "params", None))
    params.update(_param_defaults(getattr(task, "params", None)))
    params.update(conf)
    interval_start = data_interval_start or logical_date
    interval_end = data_interval_end or logical_date
    context: dict[str, Any] = {
        "dag": dag,
        "task": task,
        "ti": ti,
        "task_instance": ti,
        "dag_run": DagRunInfo(
            dag_id=dag.dag_id,
            run_id=run_id,
            logical_date=logical_date,
            conf=conf,
            run_type=run_type,
            data_interval_start=interval_start,
            data_interval_end=interval_end,
        ),
        "run_id": run_id,
        "try_number": try_number,
        "map_index": map_index,
        "params": params,
        "var": {
            "value": VariableAccessor(deserialize_json=False),
            "json": VariableAccessor(deserialize_json=True),
        },
        "conn": ConnectionAccessor(),
        "macros": MacrosAccessor(),
        "inlets": list(getattr(task, "inlets", None) or []),
        "outlets": list(getattr(task, "outlets", None) or []),
        "triggering_asset_events": {},
        "test_mode": test_mode,
        "logical_date": logical_date,
        "data_interval_start": interval_start,
        "data_interval_end": interval_end,
        "prev_data_interval_start_success": None,
        "prev_data_interval_end_success": None,
        "prev_start_date_success": None,
        "prev_end_date_success": None,
        "task_instance_key_str": f"{dag.dag_id}__{task.task_id}__{run_id}",
        "ds": None,
        "ds_nodash": None,
        "ts": None,
        "ts_nodash": None,
        "ts_nodash_with_tz": None,
    }
    if logical_date is not None:
        ts = logical_date.isoformat()
        ds = logical_date.strftime("%Y-%m-%d")
        context.update(
            ds=ds,
            ds_nodash=ds.replace("-", ""),
            ts=ts,
            ts_nodash=logical_date.strftime("%Y%m%dT%H%M%S"),
            ts_nodash_with_tz=ts.replace("-", "").replace(":", ""),
            task_instance_key_str=f"{dag.dag_id}__{task.task_id}__{ds.replace('-', '')}",
        )
    ti.context = context
    return context


def _task_api_client(url: str | None, token: str | None) -> TaskApiClient | None:
    if not url or not token:
        return None
    from ledgerflow.sdk.execution_api import TaskApiClient

    return TaskApiClient(url, token)


def set_task(context: dict[str, Any], task: BaseOperator) -> None:
    """Point the context at another operator object (the concrete task of a mapped one)."""
    context["task"] = task
    context["ti"].task = task
    context["inlets"] = list(getattr(task, "inlets", None) or [])
    context["outlets"] = list(getattr(task, "outlets", None) or [])
