"""Airflow-shaped views of a serialized DAG: its tasks (``TaskResponse``), its params
and its details (``DAGDetailsResponse``). Pure functions of the serialized DAG."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ledgerflow.api import schemas
from ledgerflow.common.dagmodel import SerializedDag, SerializedTask

# What Airflow's ``Param.dump()`` names as the class of a param.
PARAM_CLASS = "airflow.sdk.definitions.param.Param"
DEFAULT_UI_COLOR = "#fff"  # BaseOperator's colours in Airflow
DEFAULT_UI_FGCOLOR = "#000"

TASK_ORDERINGS = frozenset(schemas.TaskResponse.model_fields)


def dump_params(dag: SerializedDag) -> dict[str, Any]:
    """The DAG's params as Airflow's API shows them: ``{name: {"__class", "value",
    "description", "schema", "source"}}`` (``value`` None when there is no default)."""
    out: dict[str, Any] = {}
    for name in [*dag.params, *(n for n in dag.param_schemas if n not in dag.params)]:
        schema = dict(dag.param_schemas.get(name, {}))
        description = schema.pop("description", None)
        out[name] = {
            "__class": PARAM_CLASS,
            "value": dag.params.get(name),
            "description": description,
            "schema": schema,
            "source": None,
        }
    return out


def task_response(dag: SerializedDag, task: SerializedTask) -> schemas.TaskResponse:
    return schemas.TaskResponse(
        task_id=task.task_id,
        task_display_name=task.task_id,
        owner=task.owner,
        start_date=dag.start_date,
        end_date=dag.end_date,
        trigger_rule=task.trigger_rule,
        depends_on_past=task.depends_on_past,
        wait_for_downstream=task.wait_for_downstream,
        retries=task.retries,
        queue=task.queue,
        pool=task.pool,
        pool_slots=1,
        execution_timeout=schemas.TimeDelta.of_seconds(task.execution_timeout_seconds),
        retry_delay=schemas.TimeDelta.of_seconds(task.retry_delay_seconds),
        retry_exponential_backoff=task.retry_exponential_backoff,
        priority_weight=task.priority_weight,
        weight_rule=task.weight_rule,
        ui_color=DEFAULT_UI_COLOR,
        ui_fgcolor=DEFAULT_UI_FGCOLOR,
        template_fields=sorted(task.template_fields),
        downstream_task_ids=sorted(dag.downstream_task_ids(task.task_id)),
        doc_md=task.doc,
        operator_name=task.operator,
        params=dump_params(dag),
        class_ref={"module_path": None, "class_name": task.operator},
        is_mapped=task.mapped is not None,
        has_outlets=False,
        extra_links=[],
    )


class UnknownOrdering(ValueError):
    """``order_by`` names no field of a task."""


def task_responses(dag: SerializedDag, order_by: str = "task_id") -> list[schemas.TaskResponse]:
    """Every task, sorted by a ``TaskResponse`` field (``-field`` for descending), as
    Airflow's ``GET /dags/{dag_id}/tasks``; None values sort first."""
    field = order_by.removeprefix("-")
    if field not in TASK_ORDERINGS:
        raise UnknownOrdering(f"'TaskResponse' object has no attribute '{field}'")
    tasks = [task_response(dag, t) for t in dag.tasks]

    def key(t: schemas.TaskResponse) -> tuple[int, Any]:
        value = getattr(t, field)
        if value is None:
            return (0, 0)
        # One field's values share a type; anything unorderable sorts by its repr.
        return (1, value if isinstance(value, str | int | float) else repr(value))

    return sorted(tasks, key=key, reverse=order_by.startswith("-"))


def dag_details(dag_row: schemas.DagResponse, dag: SerializedDag) -> schemas.DagDetailsResponse:
    return schemas.DagDetailsResponse(
        **dag_row.model_dump(),
        catchup=dag.catchup,
        dag_run_timeout=(
            timedelta(seconds=dag.dagrun_timeout_seconds)
            if dag.dagrun_timeout_seconds is not None
            else None
        ),
        doc_md=dag.doc_md,
        start_date=dag.start_date,
        end_date=dag.end_date,
        is_paused_upon_creation=dag.is_paused_upon_creation,
        params=dump_params(dag),
        template_search_path=list(dag.template_searchpath) or None,
        last_parsed=dag_row.last_parsed_time,
        concurrency=dag.max_active_tasks,
    )
