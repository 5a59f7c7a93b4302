"""Scheduled runs, end to end with a real clock: every service its own process, DAGs on a
2-second ``timedelta`` schedule with catchup from a start date a few intervals back.

(a) The DAGs produce runs with consecutive logical dates, Airflow's run ids, data
    intervals and ``run_after``; pausing stops them (checked after each test).
(b) The scheduler is SIGKILLed and restarted a few intervals later: the missed intervals
    are created then, and the projection has exactly the expected logical dates, no gap
    and no duplicate.
(c) A second scheduler instance joins and then leaves while several such DAGs run: no
    missed and no duplicated run.
"""

from __future__ import annotations

import asyncio
import collections
import signal
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka.partitioner import murmur2  # type: ignore[import-untyped]

from .conftest import _create_db, _drop_db, _infra
from .system import SERVICES, System
from .test_faults import run_log

pytestmark = pytest.mark.e2e

DAGS = Path(__file__).resolve().parent / "dags"
INTERVAL = timedelta(seconds=2)
PARTITIONS = 3  # system.py: LEDGERFLOW_PARTITIONS=3


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    kafka, base_db = _infra()
    name = f"e2e_{uuid.uuid4().hex[:10]}"
    db_url = asyncio.run(_create_db(base_db, name))
    workdir: Path = tmp_path_factory.mktemp("schedules")
    s = System(kafka_bootstrap=kafka, database_url=db_url, workdir=workdir)
    try:
        for service in SERVICES:
            s.start(service)
        s.wait_healthy()
        yield s
    finally:
        s.stop_all()
        asyncio.run(_drop_db(base_db, name))


# --------------------------------------------------------------------------- helpers
def partition(dag_id: str) -> int:
    return (murmur2(dag_id.encode()) & 0x7FFFFFFF) % PARTITIONS


def dag_ids(prefix: str, n: int) -> list[str]:
    """``n`` DAG ids on as many different partitions as possible."""
    out: list[str] = []
    seen: set[int] = set()
    i = 0
    while len(out) < n:
        candidate = f"{prefix}_{i}"
        i += 1
        if partition(candidate) not in seen or len(seen) == PARTITIONS:
            seen.add(partition(candidate))
            out.append(candidate)
    return out


def submit(system: System, ids: list[str], *, intervals_back: int = 3) -> datetime:
    """Submit the DAGs with a start date ``intervals_back`` intervals ago; returns it."""
    start = datetime.now(UTC).replace(microsecond=0) - intervals_back * INTERVAL
    source = (
        (DAGS / "schedules.py")
        .read_text()
        .replace("@START@", start.isoformat())
        .replace("@INTERVAL@", str(INTERVAL.total_seconds()))
        .replace("@IDS@", ",".join(ids))
    )
    with system.client() as c:
        r = c.post("/api/v2/dagFiles", json={"filename": f"{ids[0]}.py", "content": source})
    assert r.status_code == 201, r.text
    for dag_id in ids:
        system.wait_dag(dag_id)
    return start


def runs(system: System, dag_id: str) -> list[dict[str, Any]]:
    with system.client() as c:
        r = c.get(
            f"/api/v2/dags/{dag_id}/dagRuns", params={"limit": 1000, "order_by": "logical_date"}
        )
    assert r.status_code == 200, r.text
    return list(r.json()["dag_runs"])


def when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def wait_until(what: str, check: Any, system: System, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        system.check_alive()
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}\n{system.logs()}")


def caught_up(system: System, dag_id: str, until: datetime) -> bool:
    """The DAG has a run at the latest interval due at ``until``."""
    found = runs(system, dag_id)
    return bool(found) and when(found[-1]["logical_date"]) >= until - INTERVAL


def pause(system: System, dag_ids: list[str]) -> None:
    """Pause the DAGs and wait until the projection shows it (the pause fact follows
    every run the scheduler created before it on the DAG's partition)."""
    with system.client() as c:
        for dag_id in dag_ids:
            r = c.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": True})
            assert r.status_code == 200, r.text

    def paused() -> bool:
        with system.client() as c:
            return all(c.get(f"/api/v2/dags/{d}").json()["is_paused"] for d in dag_ids)

    wait_until("the pause", paused, system)


def assert_consecutive(system: System, dag_id: str, start: datetime, until: datetime) -> int:
    """Exactly one run per interval from ``start``, none missing, up to ``until``, each
    with Airflow's scheduled run id, data interval and run_after; returns the count."""
    found = runs(system, dag_id)
    dates = [when(r["logical_date"]) for r in found]
    expected = [start + k * INTERVAL for k in range(len(dates))]
    assert dates == expected, f"{dag_id}: {dates} != {expected}"
    assert dates[-1] >= until - INTERVAL, f"{dag_id}: last run {dates[-1]}, expected {until}"
    for r, at in zip(found, dates, strict=True):
        assert r["run_type"] == "scheduled"
        assert r["dag_run_id"] == f"scheduled__{at.isoformat()}"
        assert when(r["run_after"]) == at
        assert when(r["data_interval_start"]) == when(r["data_interval_end"]) == at
    return len(found)


def assert_no_duplicate_events(system: System, dag_ids: list[str]) -> None:
    """In the run log every scheduled run was created under one event id."""
    ids: dict[tuple[str, str], set[str]] = collections.defaultdict(set)
    for env in run_log(system):
        if env.data.type == "DagRunQueued" and env.data.dag_id in dag_ids:
            ids[(env.data.dag_id, env.data.run_id)].add(env.id)
    assert ids and all(len(v) == 1 for v in ids.values()), ids


def assert_stays_paused(system: System, dag_ids: list[str]) -> None:
    counts = {d: len(runs(system, d)) for d in dag_ids}
    time.sleep(2.5 * INTERVAL.total_seconds())
    assert {d: len(runs(system, d)) for d in dag_ids} == counts


# --------------------------------------------------------------------------- tests
def test_a_short_interval_produces_consecutive_runs_until_paused(system: System) -> None:
    ids = dag_ids("sched_a", 1)
    start = submit(system, ids)
    # The three past intervals at once (catchup), then one every 2 s.
    wait_until("catchup", lambda: len(runs(system, ids[0])) >= 4, system, timeout=30)
    time.sleep(3 * INTERVAL.total_seconds())
    until = datetime.now(UTC)
    pause(system, ids)
    n = assert_consecutive(system, ids[0], start, until)
    assert n >= 6
    finished = wait_until(
        "the runs to finish",
        lambda: all(r["state"] == "success" for r in runs(system, ids[0])),
        system,
    )
    assert finished
    assert_stays_paused(system, ids)


def test_sigkill_of_the_scheduler_misses_no_interval_and_duplicates_none(system: System) -> None:
    ids = dag_ids("sched_b", 2)
    start = submit(system, ids)
    for dag_id in ids:
        wait_until("first runs", lambda d=dag_id: len(runs(system, d)) >= 4, system, timeout=30)
    system.kill("scheduler", signal.SIGKILL)
    killed = datetime.now(UTC)
    time.sleep(3 * INTERVAL.total_seconds())  # a few intervals with no scheduler at all
    before = {d: len(runs(system, d)) for d in ids}
    system.start("scheduler")
    restarted = datetime.now(UTC)
    for dag_id in ids:
        wait_until(
            "the missed intervals",
            lambda d=dag_id: caught_up(system, d, restarted),
            system,
            timeout=60,
        )
    pause(system, ids)
    for dag_id in ids:
        n = assert_consecutive(system, dag_id, start, restarted)
        # Nothing was created while no scheduler ran; the gap was filled after.
        assert before[dag_id] <= int((killed - start) / INTERVAL) + 2
        assert n > before[dag_id]
    assert_no_duplicate_events(system, ids)
    assert_stays_paused(system, ids)


def test_a_second_scheduler_joining_and_leaving_misses_and_duplicates_nothing(
    system: System,
) -> None:
    ids = dag_ids("sched_c", 4)
    start = submit(system, ids)
    for dag_id in ids:
        wait_until("first runs", lambda d=dag_id: len(runs(system, d)) >= 4, system, timeout=30)
    system.start("scheduler-b", args=["scheduler"])
    log_b = system.workdir / "scheduler-b.log"
    wait_until(
        "scheduler-b to own partitions",
        lambda: log_b.exists() and "owning partitions" in log_b.read_text(),
        system,
        timeout=60,
    )
    log_a = system.workdir / "scheduler.log"
    wait_until(
        "the first instance to hand partitions over",
        lambda: "released partitions" in log_a.read_text(),
        system,
        timeout=30,
    )
    time.sleep(3 * INTERVAL.total_seconds())  # runs decided by both instances
    system.kill("scheduler-b", signal.SIGTERM)  # leaves the group
    system.procs.pop("scheduler-b")
    wait_until(
        "the first instance to own every partition again",
        lambda: "owning partitions [0, 1, 2]" in log_a.read_text().rsplit("released", 1)[-1],
        system,
        timeout=60,
    )
    time.sleep(2 * INTERVAL.total_seconds())
    until = datetime.now(UTC)
    for dag_id in ids:
        wait_until("runs after the handover", lambda d=dag_id: caught_up(system, d, until), system)
    pause(system, ids)
    for dag_id in ids:
        assert_consecutive(system, dag_id, start, until)
    assert_no_duplicate_events(system, ids)
