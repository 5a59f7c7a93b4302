"""``POST /api/v2/dags/~/dagRuns/list``: runs of many DAGs with Airflow's
``DAGRunsBatchBody`` filters (a read, so a viewer may call it)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, status
from ledgerflow.api import catalog_queries
from ledgerflow.api.airflow_models import DAGRunsBatchBody
from ledgerflow.api.deps import Connection, require
from ledgerflow.api.schemas import DagRunCollectionResponse, ErrorResponse

router = APIRouter(tags=["DagRun"])

_BOUNDS = {"_gte": ">=", "_lte": "<="}


def body_bounds(body: DAGRunsBatchBody) -> list[tuple[str, str, datetime]]:
    found: list[tuple[str, str, datetime]] = []
    for column in ("run_after", "logical_date", "start_date", "end_date"):
        for suffix, operator in _BOUNDS.items():
            value = getattr(body, column + suffix)
            if value is not None:
                found.append((column, operator, value))
    return found


@router.post(
    "/dags/~/dagRuns/list",
    response_model=DagRunCollectionResponse,
    responses={400: {"model": ErrorResponse}},
    dependencies=[require("viewer")],
)
async def get_list_dag_runs_batch(
    body: DAGRunsBatchBody, conn: Connection
) -> DagRunCollectionResponse:
    order_by = body.order_by or "id"
    if order_by not in catalog_queries.RUN_ORDERINGS:
        allowed = sorted(k for k in catalog_queries.RUN_ORDERINGS if not k.startswith("-"))
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"Ordering with '{order_by}' is disallowed or the attribute does not exist on the"
            f" model; allowed: {allowed}",
        )
    if body.states is not None and None in body.states:
        states = [s for s in body.states if s is not None]  # runs always have a state
    else:
        states = list(body.states or ())
    if body.states is not None and not states and None in body.states:
        return DagRunCollectionResponse(dag_runs=[], total_entries=0)
    return await catalog_queries.list_runs(
        conn,
        dag_ids=body.dag_ids,
        limit=body.page_limit,
        offset=body.page_offset,
        order_by=order_by,
        states=states,
        bounds=body_bounds(body),
    )
