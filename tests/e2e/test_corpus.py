"""The Airflow corpus on the real system: every file of ``examples/airflow`` goes in
through the API (with its template files), every DAG is triggered with its conf, and the
states, XComs and log lines the API shows afterwards must be those of
``tests/corpus/expectations.py`` (the same ones ``ledgerflow dags test`` is held to).

To keep CI time down everything is done at once: set the variables and connections,
submit every file, trigger every DAG, then wait for all runs together.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from ledgerflow.cli.client_commands import template_files_near

from tests.corpus.check import MISSING, ObservedRun, problems
from tests.corpus.expectations import (
    BAD_CONFS,
    E2E,
    EXPECTATIONS,
    MISSING_PROVIDER,
    MISSING_PROVIDER_MODULE,
    Expectation,
    by_dag_id,
    for_mode,
    needed_connections,
    needed_variables,
)

from .system import System

pytestmark = pytest.mark.e2e

RUNS_TIMEOUT_S = 420.0


def q(segment: str) -> str:
    return quote(segment, safe="")


@dataclass
class Triggered:
    dag_id: str
    run_id: str
    run: dict[str, Any] | None = None  # the finished run, once it is


@dataclass
class Corpus:
    runs: dict[str, Triggered]
    followups: dict[str, Triggered]


def _set_config(c: httpx.Client) -> None:
    for key, value in needed_variables().items():
        r = c.post("/api/v2/variables", json={"key": key, "value": value})
        assert r.status_code == 201, r.text
    for conn_id, conn in needed_connections().items():
        extra = conn.get("extra")
        body = {
            "connection_id": conn_id,
            "conn_type": conn["conn_type"],
            "host": conn.get("host"),
            "login": conn.get("login"),
            "password": conn.get("password"),
            "port": conn.get("port"),
            "schema": conn.get("schema"),
            "extra": json.dumps(extra) if isinstance(extra, dict) else extra,
        }
        r = c.post("/api/v2/connections", json=body)
        assert r.status_code == 201, r.text


def _submit(system: System, path: Path) -> list[str]:
    body: dict[str, Any] = {"filename": path.name, "content": path.read_text()}
    extra = template_files_near(path)
    if extra:
        body["extra_files"] = extra
    with system.client() as c:
        r = c.post("/api/v2/dagFiles", json=body)
    assert r.status_code == 201, f"{path.name}: {r.status_code} {r.text}"
    return [d["dag_id"] for d in r.json()["dags"]]


def _trigger(c: httpx.Client, dag_id: str, conf: dict[str, Any], logical_date: str) -> str:
    r = c.post(
        f"/api/v2/dags/{q(dag_id)}/dagRuns", json={"conf": conf, "logical_date": logical_date}
    )
    assert r.status_code == 200, f"{dag_id}: {r.status_code} {r.text}"
    return str(r.json()["dag_run_id"])


def _wait_all(system: System, triggered: list[Triggered], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with system.client() as c:
        while time.monotonic() < deadline:
            system.check_alive()
            waiting = [t for t in triggered if t.run is None]
            if not waiting:
                return
            for t in waiting:
                r = c.get(f"/api/v2/dags/{q(t.dag_id)}/dagRuns/{q(t.run_id)}")
                if r.status_code == 200 and r.json()["state"] in ("success", "failed"):
                    t.run = r.json()
            time.sleep(0.5)


@pytest.fixture(scope="module")
def corpus(system: System) -> Iterator[Corpus]:
    expectations = for_mode(E2E)
    for queue in sorted({q for e in expectations for q in e.queues}):
        system.start(f"executor-{queue}", args=["executor", "--queue", queue, "--slots", "2"])
    with system.client() as c:
        _set_config(c)
    files = sorted({e.path for e in expectations})
    with ThreadPoolExecutor(max_workers=3) as pool:
        submitted = {d for ids in pool.map(lambda p: _submit(system, p), files) for d in ids}
    assert {e.dag_id for e in expectations} <= submitted
    for e in expectations:
        system.wait_dag(e.dag_id, timeout=60)

    runs: dict[str, Triggered] = {}
    followups: dict[str, Triggered] = {}
    with system.client() as c:
        for e in expectations:
            runs[e.dag_id] = Triggered(
                e.dag_id, _trigger(c, e.dag_id, dict(e.conf), e.logical_date)
            )
            if e.followup_logical_date:
                run_id = _trigger(c, e.dag_id, dict(e.conf), e.followup_logical_date)
                followups[e.dag_id] = Triggered(e.dag_id, run_id)
    _wait_all(system, [*runs.values(), *followups.values()], RUNS_TIMEOUT_S)
    yield Corpus(runs=runs, followups=followups)


# --------------------------------------------------------------------------- reading a run
def _task_instances(c: httpx.Client, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        r = c.get(
            f"/api/v2/dags/{q(dag_id)}/dagRuns/{q(run_id)}/taskInstances",
            params={"limit": 1000, "offset": len(out)},
        )
        assert r.status_code == 200, r.text
        page = r.json()["task_instances"]
        out += page
        if not page or len(out) >= r.json()["total_entries"]:
            return out


def _upstream(c: httpx.Client, dag_id: str) -> dict[str, frozenset[str]] | None:
    r = c.get(f"/api/v2/dags/{q(dag_id)}/tasks")
    if r.status_code != 200:
        return None
    ups: dict[str, set[str]] = {}
    for task in r.json()["tasks"]:
        ups.setdefault(task["task_id"], set())
        for down in task.get("downstream_task_ids") or ():
            ups.setdefault(down, set()).add(task["task_id"])
    return {k: frozenset(v) for k, v in ups.items()}


def observe(c: httpx.Client, dag_id: str, run: dict[str, Any], *, structure: bool) -> ObservedRun:
    run_id = run["dag_run_id"]
    base = f"/api/v2/dags/{q(dag_id)}/dagRuns/{q(run_id)}/taskInstances"
    tis = _task_instances(c, dag_id, run_id)

    def xcom(task_id: str, map_index: int, key: str) -> Any:
        r = c.get(f"{base}/{q(task_id)}/xcomEntries/{q(key)}", params={"map_index": map_index})
        if r.status_code == 404:
            return MISSING
        assert r.status_code == 200, r.text
        return r.json()["value"]

    def log(task_id: str, map_index: int, try_number: int) -> str:
        lines: list[str] = []
        params: dict[str, Any] = {"map_index": map_index}
        seen: set[str] = set()
        while True:
            r = c.get(f"{base}/{q(task_id)}/logs/{try_number}", params=params)
            assert r.status_code == 200, r.text
            body = r.json()
            lines += [str(line.get("event", "")) for line in body["content"]]
            token = body.get("continuation_token")
            if not token or token in seen:
                return "\n".join(lines)
            seen.add(token)
            params["token"] = token

    return ObservedRun(
        run_id=run_id,
        state=run["state"],
        task_instances={(t["task_id"], t["map_index"]): (t["state"], t["try_number"]) for t in tis},
        xcom=xcom,
        log=log,
        upstream=_upstream(c, dag_id) if structure else None,
        ti_fields={(t["task_id"], t["map_index"]): t for t in tis},
    )


# --------------------------------------------------------------------------- the tests
@pytest.mark.parametrize("exp", for_mode(E2E), ids=lambda e: e.dag_id)
def test_corpus_dag_on_the_real_system(corpus: Corpus, system: System, exp: Expectation) -> None:
    triggered = corpus.runs[exp.dag_id]
    assert triggered.run is not None, (
        f"run {triggered.run_id} of {exp.dag_id} did not finish in {RUNS_TIMEOUT_S:g}s"
    )
    with system.client() as c:
        found = problems(exp, observe(c, exp.dag_id, triggered.run, structure=bool(exp.upstream)))
    assert not found, f"{exp.dag_id} ({triggered.run_id}):\n  " + "\n  ".join(found)


def test_depends_on_past_runs_wait_for_the_previous_run(corpus: Corpus, system: System) -> None:
    first, second = corpus.runs["depends_on_past"], corpus.followups["depends_on_past"]
    assert first.run is not None and second.run is not None
    assert second.run["state"] == "success"
    with system.client() as c:
        one = {t["task_id"]: t for t in _task_instances(c, "depends_on_past", first.run_id)}
        two = {t["task_id"]: t for t in _task_instances(c, "depends_on_past", second.run_id)}
    # depends_on_past: each task after the same task of the previous run; and
    # wait_for_downstream: extract also after the previous run's transform.
    for task_id in ("extract", "transform", "load"):
        assert two[task_id]["start_date"] >= one[task_id]["end_date"], task_id
    assert two["extract"]["start_date"] >= one["transform"]["end_date"]


@pytest.mark.parametrize(("dag_id", "conf", "param"), BAD_CONFS)
def test_conf_breaking_a_param_schema_is_rejected_with_the_reason(
    corpus: Corpus, system: System, dag_id: str, conf: dict[str, Any], param: str
) -> None:
    with system.client() as c:
        r = c.post(f"/api/v2/dags/{q(dag_id)}/dagRuns", json={"conf": conf})
    assert r.status_code in (400, 422), r.text
    assert param in json.dumps(r.json()["detail"]), r.text


def test_a_dag_importing_a_missing_provider_gets_422_naming_the_module(system: System) -> None:
    with system.client() as c:
        r = c.post(
            "/api/v2/dagFiles",
            json={"filename": MISSING_PROVIDER.name, "content": MISSING_PROVIDER.read_text()},
        )
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail["kind"] == "import"
    assert detail["lineno"] == 6
    assert MISSING_PROVIDER_MODULE in detail["message"], detail


def test_expectations_cover_the_corpus() -> None:
    assert len(EXPECTATIONS) >= 25
    assert by_dag_id().keys() >= {e.dag_id for e in for_mode(E2E)}
