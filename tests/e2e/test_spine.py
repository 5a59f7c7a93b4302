"""End to end: a DAG file goes in through the API, its tasks run on an executor, and every
state is visible through the API from the projection. Every service is its own process."""

from __future__ import annotations

import collections
import time
from pathlib import Path

import httpx
import pytest

from .system import System

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DAGS = Path(__file__).resolve().parent / "dags"

pytestmark = pytest.mark.e2e


def submit(system: System, path: Path, content: str | None = None) -> dict:
    with system.client() as c:
        r = c.post(
            "/api/v2/dagFiles", json={"filename": path.name, "content": content or path.read_text()}
        )
    assert r.status_code == 201, r.text
    return r.json()


def trigger(system: System, dag_id: str, conf: dict | None = None) -> str:
    with system.client() as c:
        r = c.post(f"/api/v2/dags/{dag_id}/dagRuns", json={"conf": conf or {}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "queued"
    return body["dag_run_id"]


def task_instances(
    system: System, dag_id: str, run_id: str, *, may_be_missing: bool = False
) -> dict[str, dict]:
    with system.client() as c:
        r = c.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
    if may_be_missing and r.status_code == 404:
        return {}  # triggered, not projected yet (the API answers 404 for an unknown run)
    assert r.status_code == 200, r.text
    return {ti["task_id"]: ti for ti in r.json()["task_instances"]}


def log_lines(system: System, dag_id: str, run_id: str, task_id: str, try_number: int) -> list[str]:
    with system.client() as c:
        r = c.get(
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
        )
    assert r.status_code == 200, r.text
    return [line["event"] for line in r.json()["content"]]


def test_diamond_runs_to_success_with_a_retry(system: System):
    body = submit(system, EXAMPLES / "diamond.py")
    assert [d["dag_id"] for d in body["dags"]] == ["diamond"]
    system.wait_dag("diamond")
    run_id = trigger(system, "diamond")
    run = system.wait_run("diamond", run_id)
    assert run["state"] == "success", system.logs()
    assert run["start_date"] and run["end_date"]

    tis = task_instances(system, "diamond", run_id)
    assert {t: (ti["state"], ti["try_number"]) for t, ti in tis.items()} == {
        "a": ("success", 1),
        "b": ("success", 1),
        "c": ("success", 2),
        "d": ("success", 1),
    }
    for ti in tis.values():
        assert ti["map_index"] == -1
        assert ti["start_date"] <= ti["end_date"]
        assert "+00:00" in ti["start_date"] and "." in ti["start_date"]  # offset, microseconds
    # d starts after both branches end.
    assert tis["d"]["start_date"] >= max(tis["b"]["end_date"], tis["c"]["end_date"])

    assert "extracting rows" in log_lines(system, "diamond", run_id, "a", 1)
    assert {"hello from bash", "bash done"} <= set(log_lines(system, "diamond", run_id, "b", 1))
    first = "\n".join(log_lines(system, "diamond", run_id, "c", 1))
    assert "failing on purpose on the first try" in first
    assert "flaky: succeeded on retry" in log_lines(system, "diamond", run_id, "c", 2)
    assert any("report: rows=3" in line for line in log_lines(system, "diamond", run_id, "d", 1))


def test_scheduler_killed_mid_run_recovers_and_runs_nothing_twice(system: System, tmp_path: Path):
    source = (DAGS / "counted_diamond.py").read_text()
    source = source.replace("@MARKER_DIR@", str(tmp_path)).replace("@SLEEP@", "3")
    submit(system, DAGS / "counted_diamond.py", content=source)
    system.wait_dag("counted_diamond")
    run_id = trigger(system, "counted_diamond")

    # Wait until b and c are running, then kill the scheduler with SIGKILL.
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        tis = task_instances(system, "counted_diamond", run_id, may_be_missing=True)
        if (
            tis.get("b", {}).get("state") == "running"
            and tis.get("c", {}).get("state") == "running"
        ):
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"b and c never ran together: {tis}\n{system.logs()}")
    system.kill("scheduler")
    time.sleep(1)
    system.start("scheduler")

    run = system.wait_run("counted_diamond", run_id, timeout=180)
    assert run["state"] == "success", system.logs()
    tis = task_instances(system, "counted_diamond", run_id)
    tries = {t: ti["try_number"] for t, ti in tis.items()}
    assert tries == {"a": 1, "b": 1, "c": 2, "d": 1}
    executions = collections.Counter((tmp_path / "executions.log").read_text().split())
    assert dict(executions) == tries, f"executions {dict(executions)} vs tries {tries}"


def _alive(system: System) -> dict[str, list[dict]]:
    r = httpx.get(f"{system.api_url}/health", timeout=10)
    body = r.json()
    return {k: body.get(k, []) for k in ("schedulers", "executors", "projectors")}


def _wait_alive(system: System, want: dict[str, int], timeout: float = 60, check=None) -> dict:
    """Poll /health until it lists ``want`` instances per service (and ``check`` holds)."""
    deadline = time.monotonic() + timeout
    seen: dict = {}
    while time.monotonic() < deadline:
        seen = _alive(system)
        if all(len(seen[k]) == n for k, n in want.items()) and (check is None or check(seen)):
            return seen
        time.sleep(0.5)
    raise AssertionError(f"wanted {want} instances alive, /health says {seen}\n{system.logs()}")


def test_health_lists_the_instances_alive_and_drops_a_killed_one(system: System):
    # A scheduler's first beat may precede its partition assignment: wait for a later one.
    seen = _wait_alive(
        system,
        {"schedulers": 1, "executors": 1, "projectors": 1},
        check=lambda s: s["schedulers"][0]["details"]["partitions"] == [0, 1, 2],
    )
    assert seen["executors"][0]["details"]["queue"] == "default"
    assert seen["executors"][0]["details"]["slots"] == 4
    system.start("executor-b", args=["executor", "--queue", "default", "--slots", "2"])
    _wait_alive(system, {"executors": 2})
    system.kill("executor-b")  # SIGKILL: it stops beating without a word
    _wait_alive(system, {"executors": 1, "schedulers": 1})
