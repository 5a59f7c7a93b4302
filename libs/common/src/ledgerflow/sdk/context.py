"""The context a task's ``execute(context)`` receives (Airflow's keys)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ledgerflow.sdk.baseoperator import BaseOperator
    from ledgerflow.sdk.dag_definition import DAG

_current: list[dict[str, Any]] = []


def get_current_context() -> dict[str, Any]:
    """The context of the task running in this process (Airflow's function of that name)."""
    if not _current:
        raise RuntimeError("get_current_context() works only while a task is running")
    return _current[-1]


class RuntimeTaskInstance:
    """``context["ti"]``: who this attempt is, and the XComs of upstream tasks."""

    def __init__(
        self,
        *,
        dag_id: str,
        task_id: str,
        run_id: str,
        try_number: int,
        map_index: int,
        task: BaseOperator | None,
        xcoms: Mapping[str, Any],
    ) -> None:
        self.dag_id = dag_id
        self.task_id = task_id
        self.run_id = run_id
        self.try_number = try_number
        self.map_index = map_index
        self.task = task
        self._xcoms = dict(xcoms)

    def __repr__(self) -> str:
        return f"<TaskInstance: {self.dag_id}.{self.task_id} {self.run_id} [try {self.try_number}]>"

    def xcom_pull(
        self,
        task_ids: str | Iterable[str] | None = None,
        dag_id: str | None = None,
        key: str = "return_value",
        include_prior_dates: bool = False,
        map_indexes: int | Iterable[int] | None = None,
        default: Any = None,
    ) -> Any:
        """Return values of upstream tasks: one value for a task id, a list for a list.

        Only return values (``key="return_value"``) of the tasks the executor passed in
        travel for now; anything else gives ``default``.
        """
        if key != "return_value" or (dag_id is not None and dag_id != self.dag_id):
            return default if isinstance(task_ids, str | None) else [default for _ in task_ids]
        if task_ids is None:
            task_ids = self.task_id
        if isinstance(task_ids, str):
            return self._xcoms.get(task_ids, default)
        return [self._xcoms.get(t, default) for t in task_ids]

    def xcom_push(self, key: str, value: Any) -> None:
        """Not supported yet: return the value from the task instead."""
        raise NotImplementedError(
            "xcom_push is not supported yet; return the value from the task instead"
        )


class DagRunInfo:
    """``context["dag_run"]``: the run this attempt belongs to."""

    def __init__(
        self, *, dag_id: str, run_id: str, logical_date: datetime | None, conf: dict[str, Any]
    ) -> None:
        self.dag_id = dag_id
        self.run_id = run_id
        self.logical_date = logical_date
        self.data_interval_start = logical_date
        self.data_interval_end = logical_date
        self.conf = conf

    def __repr__(self) -> str:
        return f"<DagRun {self.dag_id} @ {self.logical_date}: {self.run_id}>"


def build_context(
    *,
    dag: DAG,
    task: BaseOperator,
    run_id: str,
    try_number: int,
    map_index: int,
    logical_date: datetime | None,
    conf: dict[str, Any],
    upstream_xcoms: Mapping[str, Any],
) -> dict[str, Any]:
    """Airflow's context keys. ``params`` are the DAG's params overridden by the run conf."""
    ti = RuntimeTaskInstance(
        dag_id=dag.dag_id,
        task_id=task.task_id,
        run_id=run_id,
        try_number=try_number,
        map_index=map_index,
        task=task,
        xcoms=upstream_xcoms,
    )
    params = {**dag.params, **conf}
    context: dict[str, Any] = {
        "dag": dag,
        "task": task,
        "ti": ti,
        "task_instance": ti,
        "dag_run": DagRunInfo(
            dag_id=dag.dag_id, run_id=run_id, logical_date=logical_date, conf=conf
        ),
        "run_id": run_id,
        "try_number": try_number,
        "map_index": map_index,
        "params": params,
        "conf": conf,
        "logical_date": logical_date,
        "data_interval_start": logical_date,
        "data_interval_end": logical_date,
        "ds": None,
        "ds_nodash": None,
        "ts": None,
        "ts_nodash": None,
    }
    if logical_date is not None:
        context["ds"] = logical_date.strftime("%Y-%m-%d")
        context["ds_nodash"] = logical_date.strftime("%Y%m%d")
        context["ts"] = logical_date.isoformat()
        context["ts_nodash"] = logical_date.strftime("%Y%m%dT%H%M%S")
    return context
