# ruff: noqa: F811  (pytest fixtures imported from live_api are parameters here)
"""A DAG's schedule in the API (issue 6): Airflow's ``timetable_summary``,
``timetable_description`` and ``next_dagrun_*`` fields, computed from the latest
version's timetable and the last scheduled run, against real Kafka and Postgres with
the projector and the scheduler running."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta

import httpx
import pytest
from ledgerflow.api.positions import HEADER
from ledgerflow.common.settings import Settings
from ledgerflow.scheduler import service as scheduler

from tests.integration.live_api import (  # noqa: F401 (fixtures)
    background,
    client,
    eventually,
    projector_running,
    settings,
)

pytestmark = pytest.mark.integration

DAG_FILE = """\
from datetime import datetime, timezone

from ledgerflow.sdk import DAG, task

for dag_id, paused in (("sched_daily", False), ("sched_paused", True)):
    with DAG(
        dag_id,
        schedule="@daily",
        start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
        is_paused_upon_creation=paused,
    ):
        @task
        def one():
            return 1

        one()

with DAG("sched_none", schedule=None):
    @task
    def two():
        return 2

    two()
"""


def midnight(days_from_today: int) -> str:
    day = datetime.now(UTC).date() + timedelta(days=days_from_today)
    return datetime.combine(day, time(), tzinfo=UTC).isoformat(timespec="microseconds")


async def test_daily_dag_shows_its_next_run(
    settings: Settings, client: httpx.AsyncClient, projector_running: None
) -> None:
    async with background(scheduler.run(settings)):
        await asyncio.sleep(4)  # the scheduler owns its partitions (see test_read_your_writes)
        r = await client.post("/api/v2/dagFiles", json={"filename": "s.py", "content": DAG_FILE})
        assert r.status_code == 201, r.text
        where = {"wait_for": r.headers[HEADER]}
        got = await eventually(lambda: _dag(client, "sched_daily", where))
        assert got["timetable_summary"] == "0 0 * * *"
        assert got["timetable_description"] == "At 00:00"

        # catchup=False: the scheduler creates today's midnight run, then the next run
        # is tomorrow's midnight (a trigger timetable: logical date = run after,
        # zero-length data interval).
        async def scheduled_today() -> dict[str, object] | None:
            runs = await client.get(
                "/api/v2/dags/sched_daily/dagRuns", params={"run_type": "scheduled"}
            )
            found = runs.json()["dag_runs"]
            return found[0] if found else None

        run = await eventually(scheduled_today)
        assert run["logical_date"] in (midnight(0), midnight(-1))  # the test may span 00:00

        async def next_is_after_the_run() -> dict[str, object] | None:
            dag = await _dag(client, "sched_daily", {})
            return dag if dag["next_dagrun_logical_date"] != run["logical_date"] else None

        dag = await eventually(next_is_after_the_run)
        tomorrow = (datetime.fromisoformat(run["logical_date"]) + timedelta(days=1)).isoformat(
            timespec="microseconds"
        )
        assert dag["next_dagrun_logical_date"] == tomorrow
        assert dag["next_dagrun_run_after"] == tomorrow
        assert dag["next_dagrun_data_interval_start"] == tomorrow
        assert dag["next_dagrun_data_interval_end"] == tomorrow

        # Paused: a schedule but no next run. No schedule: neither.
        paused = await _dag(client, "sched_paused", where)
        assert paused["is_paused"] is True and paused["timetable_summary"] == "0 0 * * *"
        assert paused["next_dagrun_logical_date"] is None
        assert paused["next_dagrun_run_after"] is None
        manual = await _dag(client, "sched_none", where)
        assert manual["timetable_summary"] is None
        assert manual["timetable_description"] == "Never, external triggers only"
        assert manual["next_dagrun_logical_date"] is None

        listing = (await client.get("/api/v2/dags", params={"dag_id_pattern": "sched_%"})).json()
        by_id = {d["dag_id"]: d for d in listing["dags"]}
        assert by_id["sched_daily"]["next_dagrun_logical_date"] == tomorrow
        assert by_id["sched_paused"]["next_dagrun_logical_date"] is None


async def _dag(client: httpx.AsyncClient, dag_id: str, params: dict[str, str]) -> dict | None:
    r = await client.get(f"/api/v2/dags/{dag_id}", params=params)
    if r.status_code != 200:
        return None
    return r.json()
