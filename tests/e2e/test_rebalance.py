"""Rebalance, end to end: executors join and leave (SIGTERM and SIGKILL) during a
500-task run. Every task ends in success, and the executions a ledger file records
(each task appends ``run_id task_id map_index try_number`` with O_APPEND) agree with the
run log: nothing ran twice under one try number, nothing ran without a recorded start,
and a recorded start missing from the ledger is a killed executor's zombie.
"""

from __future__ import annotations

import asyncio
import collections
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import _create_db, _drop_db, _infra
from .system import SERVICES, System
from .test_faults import EXECUTOR_ARGS, TIMEOUTS, executions, run_log, started_attempts, trigger

pytestmark = pytest.mark.e2e

DAGS = Path(__file__).resolve().parent / "dags"
WIDTH = 500


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    kafka, base_db = _infra()
    name = f"e2e_{uuid.uuid4().hex[:10]}"
    db_url = asyncio.run(_create_db(base_db, name))
    workdir: Path = tmp_path_factory.mktemp("rebalance")
    s = System(kafka_bootstrap=kafka, database_url=db_url, workdir=workdir, extra_env=TIMEOUTS)
    try:
        for service in SERVICES:
            s.start(service)
        s.start("executor-b", args=EXECUTOR_ARGS)
        s.wait_healthy(timeout=180)  # a loaded machine starts five services slowly
        yield s
    finally:
        s.stop_all()
        asyncio.run(_drop_db(base_db, name))


def ledger_lines(path: Path) -> int:
    return len(path.read_text().splitlines())


def wait_ledger(system: System, path: Path, at_least: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ledger_lines(path) >= at_least:
            return
        time.sleep(0.1)
    raise AssertionError(f"fewer than {at_least} executions after {timeout}s\n{system.logs()}")


def test_executors_join_and_leave_during_a_500_task_run(system: System) -> None:
    ledger = system.workdir / "ledger.txt"
    ledger.touch()
    source = (DAGS / "rebalance.py").read_text().replace("@LEDGER@", str(ledger))
    with system.client() as c:
        r = c.post("/api/v2/dagFiles", json={"filename": "rebalance.py", "content": source})
    assert r.status_code == 201, r.text
    system.wait_dag("fault_rebalance")
    run_id = trigger(system, "fault_rebalance")

    # Joins, graceful leaves and crashes, each while attempts run; at least one
    # executor is alive throughout.
    wait_ledger(system, ledger, 40)
    system.start("executor-c", args=EXECUTOR_ARGS)  # joins
    wait_ledger(system, ledger, 120)
    system.procs["executor"].send_signal(signal.SIGTERM)  # leaves gracefully
    wait_ledger(system, ledger, 180)
    system.kill("executor-b", signal.SIGKILL)  # crashes mid-task
    system.start("executor-d", args=EXECUTOR_ARGS)  # joins
    wait_ledger(system, ledger, 260)
    system.kill("executor-c", signal.SIGKILL)  # crashes mid-task
    system.start("executor-e", args=EXECUTOR_ARGS)  # joins
    wait_ledger(system, ledger, 340)
    system.procs["executor-d"].send_signal(signal.SIGTERM)  # leaves gracefully
    assert system.procs["executor"].wait(timeout=30) == 0, system.logs()

    run = system.wait_run("fault_rebalance", run_id, timeout=120)
    assert run["state"] == "success", system.logs()
    assert system.procs["executor-d"].wait(timeout=30) == 0, system.logs()

    # Every task instance ended in success, in the projection and in the run log.
    with system.client() as c:
        r = c.get(
            f"/api/v2/dags/fault_rebalance/dagRuns/{run_id}/taskInstances/work/listMapped",
            params={"limit": 1000},
        )
    assert r.status_code == 200, r.text
    projected = {ti["map_index"]: ti for ti in r.json()["task_instances"]}
    assert sorted(projected) == list(range(WIDTH))
    assert {ti["state"] for ti in projected.values()} == {"success"}

    events = run_log(system, run_id)
    succeeded = {
        (e.data.map_index, e.data.try_number)
        for e in events
        if e.data.type == "TaskAttemptSucceeded"
    }
    assert sorted(m for m, _ in succeeded) == list(range(WIDTH))  # one success each
    assert {m: projected[m]["try_number"] for m in projected} == dict(succeeded)

    # The ledger and the run log agree: nothing ran twice under one try, nothing ran
    # that the run log does not record as started, and a started attempt that never ran
    # its task (its executor was SIGKILLed between the acknowledged start and the task's
    # first line) is one the scheduler failed as a zombie.
    done = executions(ledger, run_id)
    repeats = [k for k, n in collections.Counter(done).items() if n > 1]
    assert repeats == [], f"ran twice under one try number: {repeats}"
    started = started_attempts(events)
    assert set(done) <= set(started), f"ran without a recorded start: {set(done) - set(started)}"
    zombies = {
        (e.data.map_index, e.data.try_number) for e in events if e.data.type == "TaskAttemptZombie"
    }
    never_ran = {(m, n) for _, _, m, n in set(started) - set(done)}
    assert never_ran <= zombies, f"started, never ran, not a zombie: {never_ran - zombies}"
    # Every attempt that did not succeed was a killed executor's (a zombie).
    tries = {(m, n) for _, _, m, n in done}
    assert tries - succeeded <= zombies, "an attempt that was not killed did not succeed"
