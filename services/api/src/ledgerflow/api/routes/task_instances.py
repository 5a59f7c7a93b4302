"""Task instances and their logs (``.../dagRuns/{dag_run_id}/taskInstances``), and the
writes on them: clear (``POST /dags/{dag_id}/clearTaskInstances``) and mark (``PATCH``
a task instance). Writes publish a command and answer once it is acknowledged; the
scheduler applies it (and kills running attempts it touches)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from fastapi.responses import PlainTextResponse, Response
from ledgerflow.api import interventions, log_tokens, queries
from ledgerflow.api.deps import Connection, Context, CurrentUser
from ledgerflow.api.intervention_schemas import ClearTaskInstancesBody, PatchTaskInstanceBody
from ledgerflow.api.routes import history
from ledgerflow.api.routes.dag_runs import run_not_found
from ledgerflow.api.routes.dags import Limit, Offset, dag_not_found
from ledgerflow.api.schemas import (
    ErrorResponse,
    TaskInstanceCollectionResponse,
    TaskInstanceLogResponse,
    TaskInstanceResponse,
    TaskInstanceState,
)
from ledgerflow.common import events as ev

router = APIRouter(
    prefix="/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances", tags=["Task Instance"]
)

dag_router = APIRouter(prefix="/dags/{dag_id}", tags=["Task Instance"])
"""``/dags/{dag_id}/clearTaskInstances`` (registered next to :data:`router`)."""

MapIndex = Annotated[int, Query(ge=-1, le=2**31 - 1)]


def task_instance_not_found(
    dag_id: str, run_id: str, task_id: str, map_index: int
) -> HTTPException:
    return HTTPException(
        status.HTTP_404_NOT_FOUND,
        f"The Task Instance with dag_id: `{dag_id}`, run_id: `{run_id}`, task_id: `{task_id}`"
        f" and map_index: `{map_index}` was not found",
    )


@router.get(
    "", response_model=TaskInstanceCollectionResponse, responses={404: {"model": ErrorResponse}}
)
async def list_task_instances(
    dag_id: str,
    dag_run_id: str,
    conn: Connection,
    ctx: Context,
    limit: Limit = 100,
    offset: Offset = 0,
    task_id: str | None = None,
    state: Annotated[list[TaskInstanceState] | None, Query()] = None,
    as_of: history.AsOf = None,
) -> TaskInstanceCollectionResponse:
    """Every task instance of the run: one per task, or one per map index of a mapped
    task once it has been expanded. With ``as_of``, as they were then."""
    if as_of is not None:
        found = await history.run_as_of(conn, ctx, dag_id, dag_run_id, as_of)
        return history.task_instances_page(
            found, limit=limit, offset=offset, task_id=task_id, states=state or ()
        )
    if not await queries.dag_run_exists(conn, dag_id, dag_run_id):
        raise run_not_found(dag_id, dag_run_id)
    return await queries.list_task_instances(
        conn, dag_id, dag_run_id, limit=limit, offset=offset, task_id=task_id, states=state or ()
    )


@router.get(
    "/{task_id}", response_model=TaskInstanceResponse, responses={404: {"model": ErrorResponse}}
)
async def get_task_instance(
    dag_id: str, dag_run_id: str, task_id: str, conn: Connection, map_index: MapIndex = -1
) -> TaskInstanceResponse:
    """The task instance at ``map_index`` (-1, an unmapped task, unless given)."""
    ti = await queries.get_task_instance(conn, dag_id, dag_run_id, task_id, map_index)
    if ti is None:
        if map_index == -1 and await queries.task_is_mapped(conn, dag_id, dag_run_id, task_id):
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                "Task instance is mapped, add the map_index value to the URL",
            )
        raise task_instance_not_found(dag_id, dag_run_id, task_id, map_index)
    return ti


@router.get(
    "/{task_id}/listMapped",
    response_model=TaskInstanceCollectionResponse,
    responses={404: {"model": ErrorResponse}},
)
async def list_mapped_task_instances(
    dag_id: str,
    dag_run_id: str,
    task_id: str,
    conn: Connection,
    limit: Limit = 100,
    offset: Offset = 0,
    state: Annotated[list[TaskInstanceState] | None, Query()] = None,
) -> TaskInstanceCollectionResponse:
    """The map indexes of a mapped task (an expansion to zero indexes lists none)."""
    if not await queries.task_is_mapped(conn, dag_id, dag_run_id, task_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"Task id {task_id} is not mapped")
    return await queries.list_task_instances(
        conn,
        dag_id,
        dag_run_id,
        limit=limit,
        offset=offset,
        task_id=task_id,
        states=state or (),
        mapped_only=True,
    )


@router.get(
    "/{task_id}/logs/{try_number}",
    response_model=TaskInstanceLogResponse,
    responses={
        404: {"model": ErrorResponse},
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
    },
)
async def get_log(
    dag_id: str,
    dag_run_id: str,
    task_id: str,
    try_number: Annotated[int, Path(ge=0)],
    request: Request,
    conn: Connection,
    map_index: MapIndex = -1,
    full_content: bool = False,
    token: str | None = None,
) -> TaskInstanceLogResponse | Response:
    """Lines an attempt wrote so far (Airflow 3's structured log shape), or plain text
    when the client asks for ``text/plain``. While the attempt may still write, the
    answer carries a ``continuation_token``: pass it as ``token`` to get only the lines
    written since (``full_content=true`` ignores it and answers every line)."""
    ti = await queries.get_task_instance(conn, dag_id, dag_run_id, task_id, map_index)
    if ti is None:
        raise task_instance_not_found(dag_id, dag_run_id, task_id, map_index)
    start = 0 if full_content or token is None else log_tokens.decode(token)
    lines = await queries.task_log_lines(conn, dag_id, dag_run_id, task_id, map_index, try_number)
    more = log_tokens.attempt_may_write(ti.state, ti.try_number, try_number)
    next_token = log_tokens.encode(len(lines)) if more or token is not None else None
    lines = lines[start:]
    if "text/plain" in request.headers.get("accept", ""):
        return PlainTextResponse("".join(f"{line.event}\n" for line in lines))
    return TaskInstanceLogResponse(content=lines, continuation_token=next_token)


# --------------------------------------------------------------------------- writes
@dag_router.post(
    "/clearTaskInstances",
    response_model=TaskInstanceCollectionResponse,
    responses={404: {"model": ErrorResponse}},
)
async def clear_task_instances(
    dag_id: str, body: ClearTaskInstancesBody, conn: Connection, ctx: Context, user: CurrentUser
) -> TaskInstanceCollectionResponse:
    """Airflow's ``clearTaskInstances``: with ``dry_run`` (the default) lists what would
    be cleared; otherwise publishes ``ClearTaskInstances`` and lists what it clears."""
    if await queries.get_dag(conn, dag_id) is None:
        raise dag_not_found(dag_id)
    if body.dag_run_id is not None and not await queries.dag_run_exists(
        conn, dag_id, body.dag_run_id
    ):
        raise run_not_found(dag_id, body.dag_run_id)
    run_ids = await interventions.resolve_runs(
        conn,
        dag_id,
        dag_run_id=body.dag_run_id,
        start_date=body.start_date,
        end_date=body.end_date,
        include_past=body.include_past,
        include_future=body.include_future,
    )
    task_ids = [t if isinstance(t, str) else (t[0], t[1]) for t in body.task_ids or ()] or None
    options = dict(
        only_failed=body.only_failed,
        only_running=body.only_running,
        include_upstream=body.include_upstream,
        include_downstream=body.include_downstream,
    )
    tis = await interventions.clear_dry_run(conn, dag_id, run_ids, task_ids=task_ids, **options)
    if not body.dry_run and run_ids:
        cmd = ev.ClearTaskInstances(
            dag_id=dag_id,
            run_ids=tuple(run_ids),
            task_ids=tuple(task_ids) if task_ids is not None else None,
            reset_dag_runs=body.reset_dag_runs,
            requested_by=user,
            **options,
        )
        envelope = interventions.command(
            cmd, dag_id=dag_id, now=datetime.now(UTC), correlation_id=body.dag_run_id
        )
        await ctx.producer.send(ctx.settings.topics.commands, envelope)
        tis = interventions.with_state(tis, None)
    return TaskInstanceCollectionResponse(task_instances=tis, total_entries=len(tis))


async def _patch(
    dag_id: str,
    dag_run_id: str,
    task_id: str,
    map_index: int | None,
    body: PatchTaskInstanceBody,
    conn: Connection,
    ctx: Context,
    user: str,
    *,
    dry_run: bool,
) -> TaskInstanceCollectionResponse:
    if not await queries.dag_run_exists(conn, dag_id, dag_run_id):
        raise run_not_found(dag_id, dag_run_id)
    if map_index is None:
        found = await queries.get_task_instance(conn, dag_id, dag_run_id, task_id, -1)
        if found is None and not await queries.task_is_mapped(conn, dag_id, dag_run_id, task_id):
            raise task_instance_not_found(dag_id, dag_run_id, task_id, -1)
    elif await queries.get_task_instance(conn, dag_id, dag_run_id, task_id, map_index) is None:
        raise task_instance_not_found(dag_id, dag_run_id, task_id, map_index)
    if body.new_state is None:
        if body.note is not None:
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST, "Task instance notes are not supported yet"
            )
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "new_state is required")
    run_ids = await interventions.resolve_runs(
        conn,
        dag_id,
        dag_run_id=dag_run_id,
        include_past=body.include_past,
        include_future=body.include_future,
    )
    map_indexes = None if map_index is None else (map_index,)
    tis = await interventions.mark_dry_run(
        conn,
        dag_id,
        run_ids,
        task_id,
        map_indexes,
        body.new_state,
        include_upstream=body.include_upstream,
        include_downstream=body.include_downstream,
    )
    if not (dry_run or body.dry_run):
        cmd = ev.SetTaskInstanceState(
            dag_id=dag_id,
            run_id=dag_run_id,
            task_id=task_id,
            map_indexes=map_indexes,
            new_state=body.new_state,
            include_upstream=body.include_upstream,
            include_downstream=body.include_downstream,
            include_future=body.include_future,
            include_past=body.include_past,
            requested_by=user,
        )
        envelope = interventions.command(
            cmd, dag_id=dag_id, now=datetime.now(UTC), correlation_id=dag_run_id
        )
        await ctx.producer.send(ctx.settings.topics.commands, envelope)
        tis = interventions.with_state(tis, body.new_state)
    return TaskInstanceCollectionResponse(task_instances=tis, total_entries=len(tis))


_PATCH_RESPONSES: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorResponse},
    404: {"model": ErrorResponse},
}


@router.patch(
    "/{task_id}/dry_run",
    response_model=TaskInstanceCollectionResponse,
    responses=_PATCH_RESPONSES,
)
async def patch_task_instance_dry_run(
    dag_id: str,
    dag_run_id: str,
    task_id: str,
    body: PatchTaskInstanceBody,
    conn: Connection,
    ctx: Context,
    user: CurrentUser,
    map_index: Annotated[int | None, Query(ge=-1)] = None,
) -> TaskInstanceCollectionResponse:
    """What the PATCH would change, changing nothing."""
    return await _patch(dag_id, dag_run_id, task_id, map_index, body, conn, ctx, user, dry_run=True)


@router.patch(
    "/{task_id}/{map_index}/dry_run",
    response_model=TaskInstanceCollectionResponse,
    responses=_PATCH_RESPONSES,
)
async def patch_mapped_task_instance_dry_run(
    dag_id: str,
    dag_run_id: str,
    task_id: str,
    map_index: Annotated[int, Path(ge=-1)],
    body: PatchTaskInstanceBody,
    conn: Connection,
    ctx: Context,
    user: CurrentUser,
) -> TaskInstanceCollectionResponse:
    return await _patch(dag_id, dag_run_id, task_id, map_index, body, conn, ctx, user, dry_run=True)


@router.patch(
    "/{task_id}", response_model=TaskInstanceCollectionResponse, responses=_PATCH_RESPONSES
)
async def patch_task_instance(
    dag_id: str,
    dag_run_id: str,
    task_id: str,
    body: PatchTaskInstanceBody,
    conn: Connection,
    ctx: Context,
    user: CurrentUser,
    map_index: Annotated[int | None, Query(ge=-1)] = None,
) -> TaskInstanceCollectionResponse:
    """Mark the task instance (every map index of a mapped task unless ``map_index`` is
    given) and, as asked, its relatives and the same task in past/future runs. A running
    attempt is killed; its report does not override the mark."""
    return await _patch(
        dag_id, dag_run_id, task_id, map_index, body, conn, ctx, user, dry_run=False
    )


@router.patch(
    "/{task_id}/{map_index}",
    response_model=TaskInstanceCollectionResponse,
    responses=_PATCH_RESPONSES,
)
async def patch_mapped_task_instance(
    dag_id: str,
    dag_run_id: str,
    task_id: str,
    map_index: Annotated[int, Path(ge=-1)],
    body: PatchTaskInstanceBody,
    conn: Connection,
    ctx: Context,
    user: CurrentUser,
) -> TaskInstanceCollectionResponse:
    return await _patch(
        dag_id, dag_run_id, task_id, map_index, body, conn, ctx, user, dry_run=False
    )


# Registered last: ``/{task_id}/{map_index}`` would otherwise shadow the routes above.
@router.get(
    "/{task_id}/{map_index}",
    response_model=TaskInstanceResponse,
    responses={404: {"model": ErrorResponse}},
)
async def get_mapped_task_instance(
    dag_id: str,
    dag_run_id: str,
    task_id: str,
    map_index: Annotated[int, Path(ge=-1)],
    conn: Connection,
) -> TaskInstanceResponse:
    """One map index of a task (Airflow's ``get_mapped_task_instance``)."""
    ti = await queries.get_task_instance(conn, dag_id, dag_run_id, task_id, map_index)
    if ti is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"The Mapped Task Instance with dag_id: `{dag_id}`, run_id: `{dag_run_id}`,"
            f" task_id: `{task_id}`, and map_index: `{map_index}` was not found",
        )
    return ti
