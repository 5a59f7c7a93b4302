"""A DAG's schedule fields for the API (Airflow's ``timetable_summary``,
``timetable_description`` and ``next_dagrun_*``), computed with the pure timetable core
from the latest version's timetable and the DAG's last scheduled run in the projection.

Airflow stores ``next_dagrun*`` on the DAG row when the scheduler creates a run; here
they are derived on read with the same rules the scheduler core uses (the next run
after the last scheduled one, honouring start/end date and catchup at ``now``), so they
need no extra event. Paused DAGs, DAGs without a schedule and asset-only schedules
have none.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ledgerflow.common.core.timetables import (
    DagRunInfo,
    DataInterval,
    continuous_dagrun_info,
    describe,
    next_dagrun_info,
    restriction_for,
    summary,
    time_part,
)
from ledgerflow.common.dagmodel import TimetableSpec

# Columns the DAG queries add for this (``d`` = dags, ``v`` = latest version).
SCHEDULE_COLUMNS = """
v.serialized_dag->'timetable' AS timetable, v.serialized_dag->>'start_date' AS dag_start_date,
v.serialized_dag->>'end_date' AS dag_end_date,
COALESCE((v.serialized_dag->>'catchup')::boolean, false) AS catchup,
lr.logical_date AS last_logical_date, lr.run_after AS last_run_after,
lr.data_interval_start AS last_interval_start, lr.data_interval_end AS last_interval_end
"""
# The DAG's latest scheduled run (the timetable continues from it, as in the scheduler).
LAST_SCHEDULED_RUN = """
LEFT JOIN LATERAL (
    SELECT r.logical_date, r.run_after, r.data_interval_start, r.data_interval_end
    FROM dag_runs r
    WHERE r.dag_id = d.dag_id AND r.run_type = 'scheduled' AND r.logical_date IS NOT NULL
    ORDER BY r.logical_date DESC
    LIMIT 1
) lr ON true
"""

EMPTY: dict[str, Any] = {
    "next_dagrun_logical_date": None,
    "next_dagrun_data_interval_start": None,
    "next_dagrun_data_interval_end": None,
    "next_dagrun_run_after": None,
}


def _when(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _spec(raw: Any) -> TimetableSpec | None:
    if raw is None:
        return None
    if isinstance(raw, str):  # a connection without the jsonb codec
        return TimetableSpec.model_validate_json(raw)
    return TimetableSpec.model_validate(raw)


def _last(row: Any) -> DagRunInfo | None:
    logical = row["last_logical_date"]
    if logical is None:
        return None
    run_after = row["last_run_after"] or logical
    start = row["last_interval_start"] or logical
    end = row["last_interval_end"] or run_after
    return DagRunInfo(
        run_after=run_after, logical_date=logical, data_interval=DataInterval(start, end)
    )


def schedule_fields(row: Any, *, now: datetime) -> dict[str, Any]:
    """``timetable_summary``, ``timetable_description`` and the ``next_dagrun_*`` fields
    for a DAG row selected with ``SCHEDULE_COLUMNS`` and ``LAST_SCHEDULED_RUN``."""
    spec = _spec(row["timetable"])
    fields: dict[str, Any] = {
        # Airflow's summary ("0 0 * * *"); asset schedules and no schedule keep the
        # display string stored with the DAG (the asset condition, or null).
        "timetable_summary": (
            summary(spec) if spec is not None and spec.kind != "asset" else row["schedule"]
        ),
        "timetable_description": describe(spec),
        **EMPTY,
    }
    part = time_part(spec) if spec is not None else None
    if part is None or row["is_paused"]:
        return fields
    restriction = restriction_for(
        start_date=_when(row["dag_start_date"]),
        end_date=_when(row["dag_end_date"]),
        catchup=bool(row["catchup"]),
    )
    try:
        if part.kind == "continuous":
            info = continuous_dagrun_info(last=_last(row), restriction=restriction, now=now)
        else:
            info = next_dagrun_info(part, last=_last(row), restriction=restriction, now=now)
    except ValueError:  # a spec the core refuses (validated at parse time; defensive)
        return fields
    if info is not None:
        fields.update(
            next_dagrun_logical_date=info.logical_date,
            next_dagrun_data_interval_start=info.data_interval.start,
            next_dagrun_data_interval_end=info.data_interval.end,
            next_dagrun_run_after=info.run_after,
        )
    return fields
