"""Tasks of a DAG's latest version (``/api/v2/dags/{dag_id}/tasks``)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from ledgerflow.api import queries, task_views
from ledgerflow.api.deps import Connection
from ledgerflow.api.routes.dags import dag_not_found
from ledgerflow.api.schemas import ErrorResponse, TaskCollectionResponse, TaskResponse

router = APIRouter(prefix="/dags/{dag_id}/tasks", tags=["Task"])


@router.get(
    "",
    response_model=TaskCollectionResponse,
    responses={400: {"model": ErrorResponse}, 404: {"model": ErrorResponse}},
)
async def get_tasks(
    dag_id: str, conn: Connection, order_by: str = "task_id"
) -> TaskCollectionResponse:
    """Every task, sorted by ``order_by`` (a task field; ``-field`` for descending)."""
    dag = await queries.latest_serialized_dag(conn, dag_id)
    if dag is None:
        raise dag_not_found(dag_id)
    try:
        tasks = task_views.task_responses(dag, order_by)
    except task_views.UnknownOrdering as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    return TaskCollectionResponse(tasks=tasks, total_entries=len(tasks))


@router.get("/{task_id}", response_model=TaskResponse, responses={404: {"model": ErrorResponse}})
async def get_task(dag_id: str, task_id: str, conn: Connection) -> TaskResponse:
    dag = await queries.latest_serialized_dag(conn, dag_id)
    if dag is None:
        raise dag_not_found(dag_id)
    try:
        task = dag.task(task_id)
    except KeyError:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"Task with id {task_id} was not found"
        ) from None
    return task_views.task_response(dag, task)
