"""Data-aware scheduling end to end (ADR 0013), every service its own process.

A producer DAG's task updates asset ``x`` (with ``extra`` set through
``outlet_events``), an API client posts an event for asset ``y``, and the consumer DAG
scheduled on ``x & y`` runs once, its task seeing both events in
``triggering_asset_events`` (checked through its return value). Another ``x`` alone
does not trigger it again.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from .system import System
from .test_spine import submit, trigger

pytestmark = pytest.mark.e2e

PRODUCER = """\
from airflow.sdk import DAG, Asset, task

X = Asset(name="x", uri="s3://lake/x")

with DAG("assets_producer", schedule=None):
    @task(outlets=[X])
    def write_x(*, outlet_events, run_id):
        outlet_events[X].extra["rows"] = 42
        outlet_events[X].extra["run"] = run_id
        return "written"

    write_x()
"""

CONSUMER = """\
from airflow.sdk import DAG, Asset, task

with DAG(
    "assets_consumer",
    schedule=Asset(name="x", uri="s3://lake/x") & Asset(name="y", uri="s3://lake/y"),
):
    @task
    def read(*, triggering_asset_events, dag_run):
        return {
            "events": {
                asset.name: [
                    {"extra": e.extra, "source_dag_id": e.source_dag_id}
                    for e in events
                ]
                for asset, events in triggering_asset_events.items()
            },
            "run_type": dag_run.run_type,
        }

    read()
"""


def _poll(fn: Any, *, timeout: float, what: str, system: System) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = fn()
        if result:
            return result
        time.sleep(0.25)
    raise AssertionError(f"{what} not seen in {timeout}s\n{system.logs()}")


def _consumer_runs(system: System) -> list[dict]:
    with system.client() as c:
        r = c.get("/api/v2/dags/assets_consumer/dagRuns")
    return r.json()["dag_runs"] if r.status_code == 200 else []


def test_producer_and_api_event_trigger_the_consumer(system: System, tmp_path: Path) -> None:
    submit(system, tmp_path / "assets_producer.py", PRODUCER)
    submit(system, tmp_path / "assets_consumer.py", CONSUMER)
    system.wait_dag("assets_producer")
    system.wait_dag("assets_consumer")
    with system.client() as c:
        for dag_id in ("assets_producer", "assets_consumer"):
            r = c.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": False})
            assert r.status_code == 200, r.text

    # The producer updates x: not enough for x & y.
    run_a = trigger(system, "assets_producer")
    assert system.wait_run("assets_producer", run_a)["state"] == "success"

    def x_event() -> Any:
        with system.client() as c:
            r = c.get("/api/v2/assets/events", params={"source_dag_id": "assets_producer"})
        return r.json()["asset_events"] if r.status_code == 200 else None

    (ev_x,) = _poll(x_event, timeout=60, what="x's asset event", system=system)
    assert ev_x["name"] == "x" and ev_x["extra"] == {"rows": 42, "run": run_a}
    assert (ev_x["source_task_id"], ev_x["source_run_id"]) == ("write_x", run_a)
    time.sleep(2)
    assert _consumer_runs(system) == []

    # An event for y from outside completes the condition.
    def asset_id(name: str) -> Any:
        with system.client() as c:
            r = c.get("/api/v2/assets", params={"name_pattern": name})
        hits = [a["id"] for a in r.json()["assets"] if a["name"] == name]
        return hits[0] if hits else None

    y = _poll(lambda: asset_id("y"), timeout=30, what="asset y", system=system)
    with system.client() as c:
        r = c.post("/api/v2/assets/events", json={"asset_id": y, "extra": {"source": "ci"}})
    assert r.status_code == 200, r.text

    runs = _poll(
        lambda: _consumer_runs(system), timeout=60, what="the consumer's run", system=system
    )
    (run_b,) = runs
    assert run_b["run_type"] == "asset_triggered"
    assert run_b["dag_run_id"].startswith("asset_triggered__")
    done = system.wait_run("assets_consumer", run_b["dag_run_id"])
    assert done["state"] == "success", system.logs()
    with system.client() as c:
        r = c.get(
            f"/api/v2/dags/assets_consumer/dagRuns/{run_b['dag_run_id']}"
            "/taskInstances/read/xcomEntries/return_value"
        )
    assert r.status_code == 200, r.text
    value = r.json()["value"]
    assert value["run_type"] == "asset_triggered"
    assert value["events"] == {
        "x": [{"extra": {"rows": 42, "run": run_a}, "source_dag_id": "assets_producer"}],
        "y": [{"extra": {"source": "ci"}, "source_dag_id": None}],
    }

    # The event lists the run it created.
    with system.client() as c:
        r = c.get("/api/v2/assets/events", params={"asset_id": y})
    (ev_y,) = r.json()["asset_events"]
    assert [d["run_id"] for d in ev_y["created_dagruns"]] == [run_b["dag_run_id"]]

    # x alone again: still one consumer run.
    run_a2 = trigger(system, "assets_producer")
    assert system.wait_run("assets_producer", run_a2)["state"] == "success"
    _poll(lambda: len(x_event() or []) == 2, timeout=60, what="the second x event", system=system)
    time.sleep(2)
    assert len(_consumer_runs(system)) == 1
