# ruff: noqa: F811  (pytest fixtures imported from live_api are parameters here)
"""The scheduler on a fake clock, against real Kafka and Postgres: a daily cron DAG
gets its run when the clock is moved past midnight (no waiting for a real cron time),
promptly; a paused DAG gets none; unpausing without catchup creates only the latest
interval. The API shows the runs with Airflow's data interval and run_after."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
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

with DAG(
    "clock_daily",
    schedule="0 0 * * *",
    start_date=datetime(2030, 1, 1, tzinfo=timezone.utc),
    catchup=False,
):
    @task
    def one():
        return 1

    one()
"""

DAY = timedelta(days=1)
MIDNIGHT = datetime(2031, 1, 2, tzinfo=UTC)


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def logical_dates(client: httpx.AsyncClient) -> list[datetime]:
    r = await client.get(
        "/api/v2/dags/clock_daily/dagRuns", params={"order_by": "logical_date", "limit": 100}
    )
    assert r.status_code == 200, r.text
    return [datetime.fromisoformat(x["logical_date"]) for x in r.json()["dag_runs"]]


async def test_a_cron_run_is_created_when_the_fake_clock_passes_its_time(
    settings: Settings, client: httpx.AsyncClient, projector_running: None
) -> None:
    clock = FakeClock(MIDNIGHT - timedelta(seconds=1))
    r = await client.post("/api/v2/dagFiles", json={"filename": "clock.py", "content": DAG_FILE})
    assert r.status_code == 201, r.text
    async with background(scheduler.run(settings, clock=clock)):
        # catchup=False: only the latest interval due at 23:59:59, the previous midnight.
        async def first() -> bool:
            return await logical_dates(client) == [MIDNIGHT - DAY]

        await eventually(first, within_s=60)

        clock.now = MIDNIGHT  # the cron time comes: no sleeping until a real midnight
        moved = time.monotonic()

        async def second() -> bool:
            return await logical_dates(client) == [MIDNIGHT - DAY, MIDNIGHT]

        await eventually(second, within_s=20)
        assert time.monotonic() - moved < 10  # the next run_after is a wake time

        r = await client.get(f"/api/v2/dags/clock_daily/dagRuns/scheduled__{MIDNIGHT.isoformat()}")
        assert r.status_code == 200, r.text
        run = r.json()
        assert run["run_type"] == "scheduled"
        for field in ("run_after", "data_interval_start", "data_interval_end", "logical_date"):
            assert datetime.fromisoformat(run[field]) == MIDNIGHT, (field, run)

        # Paused: the next midnights pass and nothing is created.
        r = await client.patch("/api/v2/dags/clock_daily", json={"is_paused": True})
        assert r.status_code == 200, r.text

        async def paused() -> bool:
            r = await client.get("/api/v2/dags/clock_daily")
            return bool(r.json()["is_paused"])

        await eventually(paused)
        clock.now = MIDNIGHT + 3 * DAY + timedelta(hours=1)
        await _settle()
        assert await logical_dates(client) == [MIDNIGHT - DAY, MIDNIGHT]

        # Unpaused without catchup: only the latest due interval, not the two before it.
        r = await client.patch("/api/v2/dags/clock_daily", json={"is_paused": False})
        assert r.status_code == 200, r.text

        async def latest_only() -> bool:
            return await logical_dates(client) == [MIDNIGHT - DAY, MIDNIGHT, MIDNIGHT + 3 * DAY]

        await eventually(latest_only, within_s=30)


async def _settle() -> None:
    """Give the scheduler a few of its (at most 1 s) loop rounds."""
    await asyncio.sleep(3)
