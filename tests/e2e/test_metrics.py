"""Metrics and logs end to end: every service its own process with its probe server, a
run of the diamond (one attempt fails, its retry succeeds) and an unreadable command;
``/metrics`` of the scheduler, executor, projector and api is scraped before and after,
and the counters, histograms and gauges must have moved. Service logs are JSON lines."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import _create_db, _drop_db, _infra
from .system import SERVICES, System, free_port

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

pytestmark = pytest.mark.e2e

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@dataclass
class ProbedSystem(System):
    """The e2e system with a probe server (and so ``/metrics``) on every service."""

    probe_ports: dict[str, int] = field(default_factory=dict)

    def start(self, name: str, *, args: list[str] | None = None) -> None:
        port = self.probe_ports.setdefault(name, free_port())
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the process
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "ledgerflow.cli", *(args or SERVICES[name])],
            env={**self.env, "LEDGERFLOW_PROBE_PORT": str(port), "LEDGERFLOW_LOG_FORMAT": "json"},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
        )

    def metrics_url(self, name: str) -> str:
        if name == "api":
            return f"{self.api_url}/metrics"
        return f"http://127.0.0.1:{self.probe_ports[name]}/metrics"


@pytest.fixture(scope="module")
def probed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProbedSystem]:
    kafka, base_db = _infra()
    name = f"e2e_{uuid.uuid4().hex[:10]}"
    db_url = asyncio.run(_create_db(base_db, name))
    s = ProbedSystem(
        kafka_bootstrap=kafka, database_url=db_url, workdir=tmp_path_factory.mktemp("metrics")
    )
    try:
        s.start_all()
        yield s
    finally:
        s.stop_all()
        asyncio.run(_drop_db(base_db, name))


def scrape(system: ProbedSystem, name: str) -> Samples:
    r = httpx.get(system.metrics_url(name), timeout=10)
    assert r.status_code == 200, (name, r.status_code, r.text[:500])
    assert r.headers["content-type"].startswith("text/plain"), r.headers
    samples: Samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels`` (0 when none)."""
    want = set(labels.items())
    return sum(v for (n, lbl), v in samples.items() if n == name and want <= lbl)


def series(samples: Samples, name: str) -> list[dict[str, str]]:
    return [dict(lbl) for (n, lbl), _ in samples.items() if n == name]


async def _produce_garbage(bootstrap: str, topic: str) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"this is not an envelope", key=b"metrics-dag")
    finally:
        await producer.stop()


def test_metrics_move_with_a_run(probed: ProbedSystem) -> None:
    services = ("scheduler", "executor", "projector", "api")
    before = {name: scrape(probed, name) for name in services}

    with probed.client() as c:
        source = (EXAMPLES / "diamond.py").read_text()
        r = c.post("/api/v2/dagFiles", json={"filename": "diamond.py", "content": source})
        assert r.status_code == 201, r.text
    probed.wait_dag("diamond")
    with probed.client() as c:
        r = c.post("/api/v2/dags/diamond/dagRuns", json={"conf": {}})
        assert r.status_code == 200, r.text
        run_id = r.json()["dag_run_id"]
    asyncio.run(_produce_garbage(probed.kafka_bootstrap, f"{probed.prefix}.commands"))
    assert probed.wait_run("diamond", run_id)["state"] == "success", probed.logs()

    dag = {"dag_id": "diamond"}
    attempts = {"dag_id": "diamond", "queue": "default"}
    wanted = {  # (service, metric, labels) -> how much it must have grown
        ("executor", "ledgerflow_task_attempts_started_total", "attempts"): 5,  # c twice
        ("executor", "ledgerflow_task_attempts_succeeded_total", "attempts"): 4,
        ("executor", "ledgerflow_task_attempts_failed_total", "attempts"): 1,
        ("scheduler", "ledgerflow_scheduler_queued_to_running_seconds_count", "dag"): 5,
        ("scheduler", "ledgerflow_scheduler_upstream_to_queued_seconds_count", "dag"): 3,
        ("scheduler", "ledgerflow_dagrun_first_task_scheduling_delay_seconds_count", "dag"): 1,
        ("scheduler", "ledgerflow_dagrun_duration_seconds_count", "success"): 1,
    }
    label_sets = {"attempts": attempts, "dag": dag, "success": {**dag, "state": "success"}}
    deadline = time.monotonic() + 30
    while True:  # the counters move just after the acks the run's end waited for
        after = {name: scrape(probed, name) for name in services}
        grown = {
            key: value(after[key[0]], key[1], **label_sets[key[2]])
            - value(before[key[0]], key[1], **label_sets[key[2]])
            for key in wanted
        }
        dead = {
            name: value(after[name], "ledgerflow_dead_letters_total")
            - value(before[name], "ledgerflow_dead_letters_total")
            for name in ("scheduler", "projector")
        }
        if (grown == wanted and all(d >= 1 for d in dead.values())) or (
            time.monotonic() > deadline
        ):
            break
        time.sleep(0.5)
    assert grown == wanted
    assert dead == {"scheduler": 1, "projector": 1}, dead  # the garbage, by each reader
    sched, execu, proj = after["scheduler"], after["executor"], after["projector"]
    assert value(sched, "ledgerflow_dead_letters_total", topic=f"{probed.prefix}.commands") == 1

    # Histogram sums are seconds, sane ones: nothing here took a minute.
    assert 0 < value(sched, "ledgerflow_dagrun_duration_seconds_sum", **dag) < 60
    assert 0 <= value(sched, "ledgerflow_scheduler_queued_to_running_seconds_sum", **dag) < 60

    # Consumer lag gauges, labelled with the real group and topic names (what KEDA uses).
    p = probed.prefix
    lag = series(execu, "ledgerflow_kafka_consumer_lag")
    assert {"topic": f"{p}.work.default", "group": f"{p}-executor-default"} in lag, lag
    assert value(execu, "ledgerflow_kafka_consumer_lag", topic=f"{p}.work.default") == 0
    sched_lag = series(sched, "ledgerflow_kafka_consumer_lag")
    assert {"topic": f"{p}.commands", "group": f"{p}-scheduler"} in sched_lag, sched_lag
    assert {"topic": f"{p}.runs", "group": "ledgerflow-projector"} in series(
        proj, "ledgerflow_kafka_consumer_lag"
    )
    assert series(proj, "ledgerflow_projector_lag_events") == [{}]
    assert value(proj, "ledgerflow_projector_lag_seconds") >= 0
    assert value(execu, "ledgerflow_executor_slots_total", queue="default") == 4
    assert value(execu, "ledgerflow_executor_slots_used", queue="default") == 0
    # The api serves /metrics too (its process's own series, e.g. target_info).
    assert series(after["api"], "target_info")

    # Logs: JSON lines naming their service.
    for name in ("scheduler", "executor", "projector", "api"):
        lines = (probed.workdir / f"{name}.log").read_text().splitlines()
        records = [json.loads(line) for line in lines if line.startswith("{")]
        assert records, f"{name} wrote no JSON log lines"
        assert all(r["service"] == name for r in records)
        assert {"timestamp", "level", "logger", "message"} <= set(records[0])
