# ruff: noqa: F811  (pytest fixtures imported from live_api are parameters here)
"""``/api/v2/backfills`` against real Kafka and Postgres, with the projector and the
scheduler running in the background (no executor: backfill runs stay running, which is
what shows the backfill's ``max_active_runs``)."""

from __future__ import annotations

import asyncio

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

with DAG("bf_daily", schedule="@daily", start_date=datetime(2026, 1, 1, tzinfo=timezone.utc)):
    @task
    def one():
        return 1

    one()
"""
BASE = "/api/v2/backfills"


def day(n: int) -> str:
    return f"2026-01-{n:02d}T00:00:00Z"


def iso(n: int) -> str:
    """The date in a run id (``isoformat()``)."""
    return f"2026-01-{n:02d}T00:00:00+00:00"


def ts(n: int) -> str:
    """The date as the API writes timestamps (with microseconds)."""
    return f"2026-01-{n:02d}T00:00:00.000000+00:00"


def body(**kw: object) -> dict[str, object]:
    return {"dag_id": "bf_daily", "from_date": day(1), "to_date": day(4), **kw}


async def read(client: httpx.AsyncClient, url: str, written: httpx.Response) -> httpx.Response:
    """GET waiting for ``written``'s events (and the scheduler's answer to a command)."""
    where = written.headers[HEADER]
    for _ in range(12):
        r = await client.get(url, params={"wait_for": where})
        if r.status_code != 504:
            return r
    return r


async def backfill_runs(client: httpx.AsyncClient) -> list[dict[str, object]]:
    r = await client.get(
        "/api/v2/dags/bf_daily/dagRuns", params={"run_type": "backfill", "order_by": "run_id"}
    )
    assert r.status_code == 200, r.text
    return r.json()["dag_runs"]


async def test_backfill_lifecycle_through_the_api(
    settings: Settings, client: httpx.AsyncClient, projector_running: None
) -> None:
    async with background(scheduler.run(settings)):
        await asyncio.sleep(4)  # the scheduler owns its partitions (see test_read_your_writes)
        r = await client.post("/api/v2/dagFiles", json={"filename": "bf.py", "content": DAG_FILE})
        assert r.status_code == 201, r.text
        assert (await read(client, "/api/v2/dags/bf_daily", r)).status_code == 200

        # Dry run: every daily logical date in the range, in order (or reversed).
        r = await client.post(f"{BASE}/dry_run", json=body())
        assert r.status_code == 200, r.text
        assert [b["logical_date"] for b in r.json()["backfills"]] == [ts(n) for n in (1, 2, 3, 4)]
        r = await client.post(f"{BASE}/dry_run", json=body(run_backwards=True))
        assert [b["logical_date"] for b in r.json()["backfills"]] == [ts(n) for n in (4, 3, 2, 1)]

        # A run in flight at Jan 2 is never re-run, whatever reprocess_behavior says.
        r = await client.post(
            "/api/v2/dags/bf_daily/dagRuns", json={"dag_run_id": "m2", "logical_date": day(2)}
        )
        assert r.status_code == 200, r.text
        assert (await read(client, "/api/v2/dags/bf_daily/dagRuns/m2", r)).status_code == 200
        r = await client.post(f"{BASE}/dry_run", json=body(reprocess_behavior="completed"))
        assert [b["logical_date"] for b in r.json()["backfills"]] == [ts(n) for n in (1, 3, 4)]

        # Create: two of the three new dates run at once (max_active_runs=2).
        r = await client.post(f"{BASE}", json=body(max_active_runs=2, dag_run_conf={"k": 1}))
        assert r.status_code == 200, r.text
        created = r.json()
        backfill_id = created["id"]
        assert created["dag_id"] == "bf_daily" and created["completed_at"] is None
        assert (created["max_active_runs"], created["reprocess_behavior"]) == (2, "none")
        assert created["from_date"] == ts(1) and created["is_paused"] is False
        r = await read(client, f"{BASE}/{backfill_id}", r)
        assert r.status_code == 200, r.text
        plan = [(p["action"], p["dag_run_id"], p["exception_reason"]) for p in r.json()["dag_runs"]]
        assert plan == [
            ("create", f"backfill__{iso(1)}", None),
            ("skip", "m2", "in flight"),
            ("create", f"backfill__{iso(3)}", None),
            ("create", f"backfill__{iso(4)}", None),
        ]

        async def two_runs() -> list[dict[str, object]] | None:
            runs = await backfill_runs(client)
            return runs if len(runs) >= 2 else None

        runs = await eventually(two_runs)
        assert [x["dag_run_id"] for x in runs] == [f"backfill__{iso(n)}" for n in (1, 3)]
        assert {x["run_type"] for x in runs} == {"backfill"}
        assert {x["state"] for x in runs} <= {"queued", "running"}
        assert runs[0]["conf"] == {"k": 1} and runs[0]["logical_date"] == ts(1)
        # CronTriggerTimetable: the data interval is [logical date, logical date].
        assert runs[0]["data_interval_start"] == runs[0]["data_interval_end"] == ts(1)
        await asyncio.sleep(1)
        assert len(await backfill_runs(client)) == 2  # no third while two are unfinished

        # One active backfill per DAG.
        r = await client.post(f"{BASE}", json=body(from_date=day(5), to_date=day(6)))
        assert r.status_code == 409, r.text
        r = await client.get(BASE, params={"dag_id": "bf_daily"})
        assert r.status_code == 200, r.text
        assert [b["id"] for b in r.json()["backfills"]] == [backfill_id]
        assert r.json()["total_entries"] == 1

        # Pause, then cancel: the read after each write sees it.
        r = await client.put(f"{BASE}/{backfill_id}/pause")
        assert r.status_code == 200 and r.json()["is_paused"] is True, r.text
        r = await read(client, f"{BASE}/{backfill_id}", r)
        assert r.json()["is_paused"] is True
        r = await client.put(f"{BASE}/{backfill_id}/pause")  # already paused: no command
        assert r.status_code == 200 and r.json()["is_paused"] is True, r.text
        assert HEADER not in r.headers
        r = await client.put(f"{BASE}/{backfill_id}/cancel")
        assert r.status_code == 200, r.text
        assert r.json()["completed_at"] is not None
        r = await read(client, f"{BASE}/{backfill_id}", r)
        assert r.json()["completed_at"] is not None and r.json()["cancelled"] is True
        r = await client.put(f"{BASE}/{backfill_id}/unpause")
        assert r.status_code == 409, r.text
        assert len(await backfill_runs(client)) == 2  # cancelled: no more runs

        # A new backfill may start once the last one is completed.
        r = await client.post(f"{BASE}", json=body(from_date=day(5), to_date=day(5)))
        assert r.status_code == 200, r.text
        assert r.json()["id"] > backfill_id


async def test_backfill_requests_are_checked(
    client: httpx.AsyncClient, projector_running: None
) -> None:
    r = await client.post("/api/v2/dagFiles", json={"filename": "bf.py", "content": DAG_FILE})
    assert r.status_code == 201, r.text
    assert (await read(client, "/api/v2/dags/bf_daily", r)).status_code == 200

    r = await client.post(BASE, json=body(from_date=day(4), to_date=day(1)))
    assert r.status_code == 422, r.text
    assert "from_date" in r.text and "must not be after" in r.text
    r = await client.post(f"{BASE}/dry_run", json=body(from_date=day(4), to_date=day(1)))
    assert r.status_code == 422, r.text
    r = await client.post(
        BASE, json=body(from_date="2999-01-01T00:00:00Z", to_date="2999-01-02T00:00:00Z")
    )
    assert r.status_code == 422 and "future" in r.text, r.text
    r = await client.post(BASE, json=body(reprocess_behavior="sometimes"))
    assert r.status_code == 422, r.text
    r = await client.post(BASE, json=body(max_active_runs=0))
    assert r.status_code == 422, r.text
    r = await client.post(BASE, json=body(dag_id="nope"))
    assert r.status_code == 404, r.text
    r = await client.post(BASE, json={**body(), "unknown_field": 1})
    assert r.status_code == 422, r.text

    r = await client.get(f"{BASE}/12345")
    assert r.status_code == 404, r.text
    for action in ("pause", "unpause", "cancel"):
        r = await client.put(f"{BASE}/12345/{action}")
        assert r.status_code == 404, r.text
    r = await client.get(BASE)
    assert r.status_code == 422, r.text  # dag_id is required, as in Airflow
    r = await client.get(BASE, params={"dag_id": "bf_daily"})
    assert r.json() == {"backfills": [], "total_entries": 0}
