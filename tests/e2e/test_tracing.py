"""End to end: a DAG run is one trace in a real Jaeger v2, sent over OTLP.

Every service runs as its own process with nothing but the standard ``OTEL_*``
variables pointing at the Jaeger that `make test` builds and starts
(deploy/local/jaeger.sh). The test reads the trace back through Jaeger's HTTP query API
and checks its tree: the run's span, one span per attempt under it (the failed first try
with error status), the queue wait, the executor's and the task process's spans, and the
task's own spans under its attempt.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from ledgerflow.common import telemetry

from .conftest import _create_db, _drop_db, _infra
from .system import System
from .test_spine import submit, task_instances, trigger

pytestmark = pytest.mark.e2e

DAGS = Path(__file__).resolve().parent / "dags"
URL_ENV = "LEDGERFLOW_TEST_JAEGER_URL"
OTLP_ENV = "LEDGERFLOW_TEST_JAEGER_OTLP_GRPC"
OTLP_HTTP_ENV = "LEDGERFLOW_TEST_JAEGER_OTLP_HTTP"


def jaeger_endpoints() -> tuple[str, str, str]:
    """(query URL, OTLP gRPC endpoint, OTLP HTTP endpoint) of the test Jaeger.

    Under `make test` a Jaeger that did not build or start fails the test with the
    reason; run by hand without one, the test is skipped.
    """
    error = os.environ.get("LEDGERFLOW_TEST_JAEGER_ERROR")
    if error:
        pytest.fail(error)
    url, grpc, http = (os.environ.get(n, "").strip() for n in (URL_ENV, OTLP_ENV, OTLP_HTTP_ENV))
    if not (url and grpc and http):
        if os.environ.get("LEDGERFLOW_WITH_JAEGER") == "1":
            pytest.fail(f"make test was to start Jaeger, but {URL_ENV} and {OTLP_ENV} are unset")
        pytest.skip(
            f"{URL_ENV}, {OTLP_ENV} and {OTLP_HTTP_ENV} are not set: this test needs a real "
            "Jaeger v2. Run it through `make test`, or start one with "
            "deploy/local/jaeger.sh start and set them."
        )
    return url.rstrip("/"), grpc, http


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[System, str]]:
    query_url, otlp_grpc, _ = jaeger_endpoints()
    kafka, base_db = _infra()
    name = f"e2e_{uuid.uuid4().hex[:10]}"
    db_url = asyncio.run(_create_db(base_db, name))
    s = System(
        kafka_bootstrap=kafka,
        database_url=db_url,
        workdir=tmp_path_factory.mktemp("traced"),
        extra_env={
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_grpc,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        },
    )
    try:
        s.start_all()
        yield s, query_url
    finally:
        s.stop_all()
        asyncio.run(_drop_db(base_db, name))


def _tags(span: dict[str, Any]) -> dict[str, Any]:
    return {t["key"]: t["value"] for t in span.get("tags", [])}


def _parent(span: dict[str, Any]) -> str | None:
    refs = [r for r in span.get("references", []) if r["refType"] == "CHILD_OF"]
    return refs[0]["spanID"] if refs else None


def _get(url: str, **params: Any) -> list[dict[str, Any]]:
    r = httpx.get(url, params=params, timeout=10)
    if r.status_code == 404:
        return []
    r.raise_for_status()
    return list(r.json().get("data") or [])


def wait_trace(query_url: str, trace_id: str, want: set[str], timeout: float = 60) -> dict:
    """The trace once it holds a span of every name in ``want``."""
    deadline = time.monotonic() + timeout
    names: set[str] = set()
    while time.monotonic() < deadline:
        data = _get(f"{query_url}/api/traces/{trace_id}")
        if data:
            names = {s["operationName"] for s in data[0]["spans"]}
            if want <= names:
                time.sleep(1.0)  # let stragglers of the same batch land
                return _get(f"{query_url}/api/traces/{trace_id}")[0]
        time.sleep(0.5)
    raise AssertionError(f"trace {trace_id} lacks {sorted(want - names)}; has {sorted(names)}")


def test_a_run_is_one_trace_with_the_attempt_tree(traced: tuple[System, str]) -> None:
    system, query_url = traced
    submit(system, DAGS / "traced.py")
    system.wait_dag("traced")
    run_id = trigger(system, "traced")
    run = system.wait_run("traced", run_id)
    assert run["state"] == "success", system.logs()

    trace_id = f"{telemetry.run_trace_id('traced', run_id):032x}"
    want = {
        "dag_run traced",
        "task extract",
        "task flaky",
        "execute extract",
        "execute flaky",
        "run extract",
        "run flaky",
        "extract rows",
        "parse rows",
        "queued",
    }
    tr = wait_trace(query_url, trace_id, want)
    spans = tr["spans"]
    by_id = {s["spanID"]: s for s in spans}
    service = {s["spanID"]: tr["processes"][s["processID"]]["serviceName"] for s in spans}

    # One trace for the run, found by service and attribute as an operator would.
    found = _get(
        f"{query_url}/api/traces",
        service="ledgerflow-scheduler",
        tags=json.dumps({"run_id": run_id}),
        limit=20,
    )
    assert [t["traceID"] for t in found] == [trace_id]

    # The run's span: the root, ids derived from the run, from trigger to final state.
    (root,) = [s for s in spans if s["operationName"] == "dag_run traced"]
    assert _parent(root) is None
    assert root["spanID"] == f"{telemetry.run_span_id('traced', run_id):016x}"
    assert service[root["spanID"]] == "ledgerflow-scheduler"
    rt = _tags(root)
    assert (rt["dag_id"], rt["run_id"], rt["state"]) == ("traced", run_id, "success")
    assert not rt.get("error")

    # One span per attempt, under the run, with Airflow's attributes.
    attempts = {
        (_tags(s)["task_id"], _tags(s)["try_number"]): s
        for s in spans
        if s["operationName"].startswith("task ")
    }
    assert sorted(attempts) == [("extract", 1), ("flaky", 1), ("flaky", 2)]
    for (task_id, try_number), s in attempts.items():
        t = _tags(s)
        assert _parent(s) == root["spanID"]
        assert s["spanID"] == (
            f"{telemetry.attempt_span_id('traced', run_id, task_id, -1, try_number):016x}"
        )
        assert (t["dag_id"], t["run_id"], t["map_index"], t["queue"]) == (
            "traced",
            run_id,
            -1,
            "default",
        )
        assert t["executor_id"]
        assert root["startTime"] <= s["startTime"]
        assert s["startTime"] + s["duration"] <= root["startTime"] + root["duration"]
    failed = _tags(attempts[("flaky", 1)])
    assert failed["error"] is True and failed["otel.status_code"] == "ERROR"
    assert failed["state"] == "up_for_retry"
    assert "failing on purpose" in failed["otel.status_description"]
    assert _tags(attempts[("flaky", 2)])["state"] == "success"
    assert not _tags(attempts[("flaky", 2)]).get("error")
    assert _tags(attempts[("extract", 1)])["state"] == "success"

    # Under each attempt: its queue wait, the executor's span, under that the task
    # process's span; the task's own spans under the process's.
    def children(parent: dict[str, Any], name: str) -> list[dict[str, Any]]:
        return [s for s in spans if _parent(s) == parent["spanID"] and s["operationName"] == name]

    for (task_id, _), attempt in attempts.items():
        (queued,) = children(attempt, "queued")
        assert queued["startTime"] >= attempt["startTime"]
        (execute,) = children(attempt, f"execute {task_id}")
        et = _tags(execute)
        assert service[execute["spanID"]] == "ledgerflow-executor"
        assert et["span.kind"] == "consumer"
        assert et["messaging.system"] == "kafka"
        assert et["messaging.destination.name"] == f"{system.prefix}.work.default"
        assert et["executor_id"] == _tags(attempt)["executor_id"]
        (process,) = children(execute, f"run {task_id}")
        assert service[process["spanID"]] == "ledgerflow-task"
        assert _tags(process)["try_number"] == _tags(attempt)["try_number"]
    failed_exec = children(attempts[("flaky", 1)], "execute flaky")[0]
    assert _tags(failed_exec)["error"] is True

    (process,) = children(children(attempts[("extract", 1)], "execute extract")[0], "run extract")
    (own,) = children(process, "extract rows")
    assert _tags(own)["rows"] == 3
    (nested,) = children(own, "parse rows")
    assert by_id[_parent(nested)]["operationName"] == "extract rows"

    # The scheduler's decision on the trigger command is in the run's trace too.
    decisions = [s for s in spans if s["operationName"] == "scheduler TriggerDagRun"]
    assert len(decisions) == 1 and _parent(decisions[0]) == root["spanID"]
    dt = _tags(decisions[0])
    assert dt["messaging.system"] == "kafka"
    assert dt["messaging.destination.name"] == f"{system.prefix}.commands"
    # ... and links to the API request that sent the command (a trace of its own).
    (link,) = [r for r in decisions[0].get("references", []) if r["refType"] == "FOLLOWS_FROM"]
    request_trace = _get(f"{query_url}/api/traces/{link['traceID']}")[0]
    assert link["spanID"] in {s["spanID"] for s in request_trace["spans"]}
    (request,) = [s for s in request_trace["spans"] if _parent(s) is None]
    assert request["operationName"] == "POST /api/v2/dags/{dag_id}/dagRuns"
    assert request_trace["processes"][request["processID"]]["serviceName"] == "ledgerflow-api"
    rq = _tags(request)
    assert (rq["span.kind"], rq["http.response.status_code"]) == ("server", 200)

    # For docs/observability.md: LEDGERFLOW_TRACE_SCREENSHOT=docs/screenshots/jaeger-trace.png
    # (`make screenshots`). Jaeger's UI when the Jaeger serves one (JAEGER_UI_ASSETS, see
    # deploy/local/jaeger-ui.sh; then it must), else a waterfall of the trace's JSON.
    if out := os.environ.get("LEDGERFLOW_TRACE_SCREENSHOT"):
        from .trace_view import screenshot

        shot = screenshot(
            query_url, tr, Path(out), require_ui=bool(os.environ.get("JAEGER_UI_ASSETS"))
        )
        print(f"screenshot ({shot}): {out}")


def test_spans_exported_over_otlp_http_reach_jaeger() -> None:
    """The other standard protocol, from this process: http/protobuf."""
    query_url, _, otlp_http = jaeger_endpoints()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    service = f"ledgerflow-http-{uuid.uuid4().hex[:8]}"
    provider = TracerProvider(resource=Resource({"service.name": service}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{otlp_http}/v1/traces"))
    )
    with provider.get_tracer("test").start_as_current_span("over http"):
        pass
    provider.shutdown()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = _get(f"{query_url}/api/traces", service=service, limit=5)
        if found:
            assert [s["operationName"] for s in found[0]["spans"]] == ["over http"]
            return
        time.sleep(0.3)
    raise AssertionError(f"no trace of service {service} in Jaeger")


def test_a_run_surviving_a_scheduler_crash_is_still_one_trace(
    traced: tuple[System, str], tmp_path: Path
) -> None:
    """Kill the scheduler (SIGKILL) while b and c run; its successor finishes the run.
    The run is still one trace, with its span and each attempt's span exactly once."""
    system, query_url = traced
    source = (DAGS / "counted_diamond.py").read_text()
    source = source.replace("@MARKER_DIR@", str(tmp_path)).replace("@SLEEP@", "5")
    submit(system, DAGS / "counted_diamond.py", content=source)
    system.wait_dag("counted_diamond")
    run_id = trigger(system, "counted_diamond")
    deadline = time.monotonic() + 60
    tis: dict[str, dict] = {}
    while time.monotonic() < deadline:
        tis = task_instances(system, "counted_diamond", run_id, may_be_missing=True)
        if all(tis.get(t, {}).get("state") == "running" for t in ("b", "c")):
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"b and c never ran together: {tis}\n{system.logs()}")
    time.sleep(1.0)  # the old scheduler's span of a is exported (batches every 200 ms)
    system.kill("scheduler")
    system.start("scheduler")
    run = system.wait_run("counted_diamond", run_id, timeout=180)
    assert run["state"] == "success", system.logs()

    trace_id = f"{telemetry.run_trace_id('counted_diamond', run_id):032x}"
    want = {"dag_run counted_diamond", "task a", "task b", "task c", "task d"}
    spans = wait_trace(query_url, trace_id, want)["spans"]
    roots = [s for s in spans if s["operationName"] == "dag_run counted_diamond"]
    assert len(roots) == 1 and _parent(roots[0]) is None
    attempts = sorted(
        (_tags(s)["task_id"], _tags(s)["try_number"])
        for s in spans
        if s["operationName"].startswith("task ")
    )
    assert attempts == [("a", 1), ("b", 1), ("c", 1), ("c", 2), ("d", 1)]
    for s in spans:
        if s["operationName"].startswith("task "):
            assert _parent(s) == roots[0]["spanID"]
            assert bool(_tags(s).get("error")) == (
                (_tags(s)["task_id"], _tags(s)["try_number"]) == ("c", 1)
            )
    assert len({s["spanID"] for s in spans}) == len(spans)
