"""A backfill end to end: ``ledgerflow dags backfill --wait`` against every service as its
own process. Four daily intervals of a tiny DAG, at most two runs at once."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from .system import System

pytestmark = pytest.mark.e2e

DAG_FILE = """
import time
from datetime import datetime, timezone

from ledgerflow.sdk import DAG, task

with DAG(
    "backfill_e2e",
    schedule="@daily",
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    end_date=datetime(2026, 1, 31, tzinfo=timezone.utc),
    tags=["e2e"],
):
    @task
    def work():
        time.sleep(1.0)
        return 1

    work()
"""
DATES = [f"2026-01-0{d}T00:00:00+00:00" for d in (1, 2, 3, 4)]


def cli(system: System, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = system.env | {"LEDGERFLOW_PASSWORD": system.password}
    return subprocess.run(
        [sys.executable, "-m", "ledgerflow.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
    )


def when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def most_at_once(runs: list[dict[str, Any]]) -> int:
    """The most runs whose [start_date, end_date] overlap at one moment."""
    edges = sorted(
        [(when(r["start_date"]), 1) for r in runs] + [(when(r["end_date"]), -1) for r in runs],
        key=lambda e: (e[0], e[1]),  # an end before a start at the same instant
    )
    running = peak = 0
    for _, delta in edges:
        running += delta
        peak = max(peak, running)
    return peak


def test_backfill_four_daily_intervals_two_at_a_time(system: System, tmp_path: Path) -> None:
    dag_file = tmp_path / "backfill_e2e.py"
    dag_file.write_text(DAG_FILE)
    r = cli(system, "dags", "submit", str(dag_file), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    system.wait_dag("backfill_e2e")

    dates = ("--start", "2026-01-01", "--end", "2026-01-04")
    r = cli(system, "dags", "backfill", "backfill_e2e", *dates, "--dry-run", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert [when(x) for x in r.stdout.split()] == [when(d) for d in DATES]

    options = ("--max-active-runs", "2", "--conf", '{"src": "e2e"}', "--wait", "--timeout", "180")
    r = cli(system, "dags", "backfill", "backfill_e2e", *dates, *options, cwd=tmp_path)
    assert r.returncode == 0, (r.stdout, r.stderr, system.logs())
    backfill_id = int(r.stdout.split()[1])  # "backfill <id> created for ..."
    assert "4 of 4 run(s) succeeded" in r.stderr

    with system.client() as c:
        found = c.get(
            "/api/v2/dags/backfill_e2e/dagRuns",
            params={"run_type": "backfill", "order_by": "logical_date", "limit": 100},
        ).json()["dag_runs"]
        backfill = c.get(f"/api/v2/backfills/{backfill_id}").json()
        listed = c.get("/api/v2/backfills", params={"dag_id": "backfill_e2e"}).json()
    assert [r["dag_run_id"] for r in found] == [f"backfill__{d}" for d in DATES]
    assert {(r["run_type"], r["state"]) for r in found} == {("backfill", "success")}
    assert [when(r["logical_date"]) for r in found] == [when(d) for d in DATES]
    assert all(r["conf"] == {"src": "e2e"} for r in found)
    assert most_at_once(found) <= 2
    # In order: the third date's run starts only after one of the first two ended.
    first_end = min(when(r["end_date"]) for r in found[:2])
    assert when(found[2]["start_date"]) >= first_end

    assert backfill["completed_at"] is not None and backfill["is_paused"] is False
    assert [(p["action"], p["state"]) for p in backfill["dag_runs"]] == [("create", "success")] * 4
    assert [b["id"] for b in listed["backfills"]] == [backfill_id]

    shown = cli(system, "backfills", "show", str(backfill_id), cwd=tmp_path)
    assert shown.returncode == 0 and f"backfill__{DATES[3]}" in shown.stdout, shown.stderr
    listed_cli = cli(system, "backfills", "list", "backfill_e2e", cwd=tmp_path)
    assert listed_cli.returncode == 0 and str(backfill_id) in listed_cli.stdout, listed_cli.stderr
    r = cli(system, "backfills", "cancel", str(backfill_id), cwd=tmp_path)
    assert r.returncode != 0 and "already completed" in r.stderr
