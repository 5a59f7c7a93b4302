"""The Kafka broker restarts during a run: every service rides it out, the run finishes,
and nothing runs twice (the ledger file the tasks append to equals the attempts in the
run log).

This module starts a private single-node broker (``deploy/local/kafka.sh``, its own
ports and data directory) so that stopping it disturbs nobody else; Postgres is the
shared test one. Starting a broker takes tens of seconds, twice.
"""

from __future__ import annotations

import asyncio
import collections
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import _create_db, _drop_db, _infra
from .system import SERVICES, System, free_port
from .test_faults import EXECUTOR_ARGS, TIMEOUTS, executions, run_log, started_attempts, trigger

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
KAFKA_SH = REPO / "deploy" / "local" / "kafka.sh"
DAGS = Path(__file__).resolve().parent / "dags"
# The broker is away longer than the usual fault-test zombie timeout: heartbeats cannot
# reach the scheduler meanwhile, so the timeout must outlast the outage (ADR 0010).
OUTAGE_TIMEOUTS = {**TIMEOUTS, "LEDGERFLOW_ZOMBIE_TIMEOUT_SECONDS": "180"}


class Broker:
    """A private broker driven by deploy/local/kafka.sh."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            "KAFKA_PORT": str(self.port),
            "KAFKA_CONTROLLER_PORT": str(free_port()),
            "KAFKA_DATA_DIR": str(data_dir),
            "KAFKA_HEAP_OPTS": "-Xms256m -Xmx512m",
            "KAFKA_START_TIMEOUT": "240",
        }
        self.data_dir = data_dir

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _run(self, command: str) -> None:
        r = subprocess.run(
            [str(KAFKA_SH), command],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert r.returncode == 0, f"kafka.sh {command} failed:\n{r.stderr[-3000:]}"

    def start(self) -> None:
        self._run("start")

    def stop(self) -> None:
        self._run("stop")


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    _infra()  # skips without the test infrastructure
    if shutil.which("java") is None:
        pytest.skip("a private broker needs Java (deploy/local/kafka.sh)")
    b = Broker(tmp_path_factory.mktemp("kafka"))
    try:
        b.start()
        yield b
    finally:
        b.stop()
        shutil.rmtree(b.data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def system(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    _, base_db = _infra()
    name = f"e2e_{uuid.uuid4().hex[:10]}"
    db_url = asyncio.run(_create_db(base_db, name))
    workdir: Path = tmp_path_factory.mktemp("broker-restart")
    s = System(
        kafka_bootstrap=broker.bootstrap,
        database_url=db_url,
        workdir=workdir,
        extra_env=OUTAGE_TIMEOUTS,
    )
    try:
        for service in SERVICES:
            s.start(service)
        s.start("executor-b", args=EXECUTOR_ARGS)
        s.wait_healthy(timeout=180)
        yield s
    finally:
        s.stop_all()
        asyncio.run(_drop_db(base_db, name))


def test_the_broker_restarts_during_a_run_and_nothing_runs_twice(
    system: System, broker: Broker
) -> None:
    ledger = system.workdir / "ledger.txt"
    ledger.touch()
    source = (DAGS / "faults.py").read_text().replace("@LEDGER@", str(ledger))
    with system.client() as c:
        r = c.post("/api/v2/dagFiles", json={"filename": "faults.py", "content": source})
    assert r.status_code == 201, r.text
    system.wait_dag("fault_wide", timeout=60)
    run_id = trigger(system, "fault_wide")

    deadline = time.monotonic() + 90
    while len(ledger.read_text().splitlines()) < 8:
        assert time.monotonic() < deadline, system.logs()
        time.sleep(0.1)
    broker.stop()  # mid-run: attempts are running and queued
    time.sleep(2)
    broker.start()

    run = system.wait_run("fault_wide", run_id, timeout=180)
    assert run["state"] == "success", system.logs()
    system.check_alive()  # every service rode the outage out
    events = run_log(system, run_id)
    done = executions(ledger, run_id)
    repeats = [k for k, n in collections.Counter(done).items() if n > 1]
    assert repeats == [], f"ran twice under one try number: {repeats}"
    assert done == started_attempts(events)
    assert {t for _, t, _, _ in done} == {f"w{i:02d}" for i in range(50)}
    succeeded = {e.data.task_id for e in events if e.data.type == "TaskAttemptSucceeded"}
    assert len(succeeded) == 50
