"""Task tokens and ``ti.external_task_state``: an executor mints a short-lived read-only
token per attempt, the API accepts it as a viewer, and the task asks the API (here a fake
HTTP server) for other runs' states, as Airflow 3's task SDK does."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from ledgerflow.api.access import AccessControl
from ledgerflow.api.auth import Authenticator, InvalidToken
from ledgerflow.common.events import RunTaskAttempt
from ledgerflow.common.settings import Settings
from ledgerflow.common.task_tokens import (
    DEFAULT_TASK_TTL_SECONDS,
    TASK_TTL_MARGIN_SECONDS,
    mint_task_token,
    task_token_ttl,
)
from ledgerflow.executor.child import child_environment
from ledgerflow.executor.task_api import TaskApiAccess
from ledgerflow.sdk import DAG
from ledgerflow.sdk.context import RuntimeTaskInstance
from ledgerflow.sdk.exceptions import AirflowException, AirflowSkipException
from ledgerflow.sdk.execution_api import TaskApiClient, TaskApiError, TaskApiNotConfigured
from ledgerflow.sdk.runner import execute_request
from ledgerflow.sdk.sensors import ExternalTaskSensor

SECRET = "task-token-test-key-0123456789abcdef"
LOGICAL = datetime(2024, 3, 15, tzinfo=UTC)


def mint(**overrides: Any) -> str:
    fields: dict[str, Any] = dict(
        dag_id="consumer",
        run_id="manual__2024-03-15",
        task_id="wait",
        map_index=-1,
        try_number=2,
        ttl_seconds=600,
    )
    fields.update(overrides)
    return mint_task_token(SECRET, **fields)


# --------------------------------------------------------------------------- tokens
def test_a_task_token_verifies_as_a_read_only_viewer_without_a_user_lookup() -> None:
    auth = Authenticator(username="admin", password="pw", secret=SECRET, ttl_seconds=3600)
    claims = auth.verify(mint())
    assert claims.kind == "task" and claims.role == "viewer"
    assert claims.username == "task:consumer/manual__2024-03-15/wait/-1/2"
    assert claims.expires_at - claims.issued_at == 600

    class NoProjection:  # any query would fail the test
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"a task token must not touch the projection ({name})")

    import asyncio

    principal = asyncio.run(AccessControl(auth).principal_for_token(NoProjection(), mint()))
    assert (principal.name, principal.role, principal.kind) == (claims.username, "viewer", "task")
    assert principal.read_only


def test_task_tokens_expire_and_need_the_right_key() -> None:
    auth = Authenticator(username="admin", password="pw", secret=SECRET, ttl_seconds=3600)
    with pytest.raises(InvalidToken, match="expired"):
        auth.verify(mint(now=time.time() - 700))
    other = Authenticator(username="admin", password="pw", secret="x" * 32, ttl_seconds=3600)
    with pytest.raises(InvalidToken, match="Signature"):
        other.verify(mint())
    with pytest.raises(ValueError, match="LEDGERFLOW_SECRET_KEY"):
        mint_task_token(
            "", dag_id="d", run_id="r", task_id="t", map_index=-1, try_number=1, ttl_seconds=1
        )


def test_token_lifetime_follows_the_execution_timeout() -> None:
    assert task_token_ttl(None) == DEFAULT_TASK_TTL_SECONDS + TASK_TTL_MARGIN_SECONDS
    assert task_token_ttl(120) == 120 + TASK_TTL_MARGIN_SECONDS


def test_the_executor_puts_url_and_token_in_the_request_never_the_key() -> None:
    assert TaskApiAccess.from_settings(Settings(secret_key=None)) is None
    access = TaskApiAccess.from_settings(
        Settings(secret_key=SECRET, api_url="http://api.internal:8081")
    )
    assert access is not None and SECRET not in repr(access)
    item = RunTaskAttempt(
        dag_id="consumer",
        run_id="r1",
        task_id="wait",
        map_index=3,
        try_number=1,
        version_id="v1",
        queue="default",
        execution_timeout_seconds=60,
    )
    now = time.time()
    fields = access.request_fields(item, now=now)
    assert fields["api_url"] == "http://api.internal:8081"
    claims = Authenticator("admin", "pw", SECRET, 3600).verify(fields["api_token"])
    assert claims.username == "task:consumer/r1/wait/3/1"
    assert claims.expires_at == int(now) + 60 + TASK_TTL_MARGIN_SECONDS
    # The key itself never reaches the task's environment.
    env = child_environment({"LEDGERFLOW_SECRET_KEY": SECRET, "PATH": "/bin"})
    assert "LEDGERFLOW_SECRET_KEY" not in env


# --------------------------------------------------------------------------- a fake API
class FakeApi:
    """Serves the two routes a task reads: runs by logical date and task instances."""

    def __init__(self) -> None:
        self.runs: dict[str, list[dict[str, Any]]] = {}  # dag_id -> runs
        self.tis: dict[tuple[str, str], list[dict[str, Any]]] = {}  # (dag, run) -> TIs
        self.seen: list[tuple[str, dict[str, list[str]], str | None]] = []
        self.token = "tok"
        self.fail_next = 0  # answer 503 this many times first

    def handle(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        if self.fail_next:
            self.fail_next -= 1
            return 503, {"detail": "restarting"}
        parts = [unquote(p) for p in path.split("/")]
        # /api/v2/dags/{dag}/dagRuns[/{run}/taskInstances]
        if parts[:4] != ["", "api", "v2", "dags"] or len(parts) < 6:
            return 404, {"detail": "no route"}
        dag_id = parts[4]
        if dag_id not in self.runs:
            return 404, {"detail": f"The Dag with ID: `{dag_id}` was not found"}
        if len(parts) == 6:
            low, high = query["logical_date_gte"][0], query["logical_date_lte"][0]
            runs = [
                r
                for r in self.runs[dag_id]
                if low <= r["logical_date"] <= high  # same ISO format: string order works
            ]
            return 200, {"dag_runs": runs[: int(query["limit"][0])], "total_entries": len(runs)}
        run_id = parts[6]
        tis = self.tis.get((dag_id, run_id))
        if tis is None:
            return 404, {"detail": "run not found"}
        if "task_id" in query:
            tis = [t for t in tis if t["task_id"] == query["task_id"][0]]
        offset, limit = int(query["offset"][0]), int(query["limit"][0])
        return 200, {"task_instances": tis[offset : offset + limit], "total_entries": len(tis)}


@pytest.fixture
def api() -> Iterator[tuple[FakeApi, str]]:
    fake = FakeApi()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            fake.seen.append((url.path, query, self.headers.get("Authorization")))
            if self.headers.get("Authorization") != f"Bearer {fake.token}":
                status, body = 401, {"detail": "Invalid token: Signature has expired"}
            else:
                status, body = fake.handle(url.path, query)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def producer_run(fake: FakeApi, tis: list[dict[str, Any]], state: str = "running") -> None:
    fake.runs["producer"] = [
        {"dag_run_id": "other-day", "logical_date": "2024-03-14T00:00:00+00:00", "state": "failed"},
        {"dag_run_id": "run/1", "logical_date": LOGICAL.isoformat(), "state": state},
    ]
    fake.tis[("producer", "run/1")] = tis


def ti_with(url: str, token: str = "tok") -> RuntimeTaskInstance:
    return RuntimeTaskInstance(
        dag_id="consumer",
        task_id="wait",
        run_id="r",
        try_number=1,
        map_index=-1,
        task=None,
        api=TaskApiClient(url, token, backoff=0.01),
    )


def test_external_task_state_reads_runs_and_task_instances(api: tuple[FakeApi, str]) -> None:
    fake, url = api
    producer_run(
        fake,
        [
            {"task_id": "produce", "map_index": -1, "state": "success"},
            {"task_id": "fan", "map_index": 1, "state": "running"},
            {"task_id": "fan", "map_index": 0, "state": "success"},
            {"task_id": "grp.a", "map_index": -1, "state": "success"},
            {"task_id": "grp.b", "map_index": 0, "state": "failed"},
        ],
    )
    ti = ti_with(url)
    assert ti.external_task_state("producer", None, LOGICAL) == "running"
    assert ti.external_task_state("producer", "produce", LOGICAL) == "success"
    assert ti.external_task_state("producer", "nothing", LOGICAL) is None
    assert ti.external_task_state("producer", "produce", LOGICAL + timedelta(hours=1)) is None
    assert ti.external_task_state("ghost", "produce", LOGICAL) is None  # unknown DAG: 404
    # A mapped task: one state per map index; a single state only when they agree.
    assert ti.external_task_map_states("producer", "fan", LOGICAL) == ["success", "running"]
    assert ti.external_task_state("producer", "fan", LOGICAL) is None
    assert ti.external_task_group_states("producer", "grp", LOGICAL) == {
        "grp.a": ["success"],
        "grp.b": ["failed"],
    }
    # The exact logical date, with the token.
    path, query, auth = next(s for s in fake.seen if s[0].endswith("/dagRuns"))
    assert path == "/api/v2/dags/producer/dagRuns"
    assert query["logical_date_gte"] == query["logical_date_lte"] == [LOGICAL.isoformat()]
    assert auth == "Bearer tok"
    # A naive date is UTC; pendulum-like subclasses work the same.
    assert ti.external_task_state("producer", None, datetime(2024, 3, 15)) == "running"


def test_paging_through_many_task_instances(api: tuple[FakeApi, str]) -> None:
    fake, url = api
    producer_run(fake, [{"task_id": "m", "map_index": i, "state": "success"} for i in range(250)])
    states = ti_with(url).external_task_map_states("producer", "m", LOGICAL)
    assert states == ["success"] * 250


def test_connection_problems_are_retried_within_the_poke(api: tuple[FakeApi, str]) -> None:
    fake, url = api
    producer_run(fake, [], state="success")
    fake.fail_next = 2
    assert ti_with(url).external_task_state("producer", None, LOGICAL) == "success"
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    slept: list[float] = []
    client = TaskApiClient(closed, "tok", attempts=3, backoff=0.1, sleep=slept.append)
    with pytest.raises(TaskApiError, match="unreachable .*tried 3 times"):
        client.dag_run_at("producer", LOGICAL)
    assert slept == [0.1, 0.2]


def test_a_refused_token_says_so(api: tuple[FakeApi, str]) -> None:
    fake, url = api
    producer_run(fake, [])
    with pytest.raises(TaskApiError, match="refused this task's token .*LEDGERFLOW_SECRET_KEY"):
        ti_with(url, token="stale").external_task_state("producer", None, LOGICAL)


def test_without_url_and_token_the_error_names_the_settings() -> None:
    ti = RuntimeTaskInstance(
        dag_id="d", task_id="t", run_id="r", try_number=1, map_index=-1, task=None
    )
    with pytest.raises(TaskApiNotConfigured) as caught:
        ti.external_task_state("producer", "produce", LOGICAL)
    message = str(caught.value)
    assert "LEDGERFLOW_SECRET_KEY" in message and "LEDGERFLOW_API_URL" in message
    assert "ledgerflow dags test" in message
    assert caught.value.retryable is False


# --------------------------------------------------------------------------- the sensor
SENSOR_DAG = """
from datetime import datetime
from airflow.providers.standard.sensors.external_task import ExternalTaskSensor
from airflow.sdk import DAG

with DAG("consumer", schedule=None, start_date=datetime(2024, 1, 1)):
    ExternalTaskSensor(task_id="wait", external_dag_id="producer", external_task_id="fan",
                       poke_interval=0.05, timeout=5)
"""


def request(**extra: Any) -> dict[str, Any]:
    return {
        "source": SENSOR_DAG,
        "filename": "consumer.py",
        "dag_id": "consumer",
        "task_id": "wait",
        "run_id": "r",
        "logical_date": LOGICAL.isoformat(),
        **extra,
    }


def test_the_sensor_in_a_task_uses_the_requests_api_url_and_token(
    api: tuple[FakeApi, str],
) -> None:
    fake, url = api
    producer_run(fake, [{"task_id": "fan", "map_index": i, "state": "success"} for i in range(3)])
    outcome = execute_request(request(api_url=url, api_token="tok"))
    assert outcome["status"] == "success", outcome


def test_the_sensor_without_an_api_fails_saying_what_is_missing() -> None:
    outcome = execute_request(request())
    assert outcome["status"] == "failed"
    assert outcome["retryable"] is False
    assert "LEDGERFLOW_SECRET_KEY" in outcome["error"]


def test_mapped_and_group_semantics_of_the_sensor(api: tuple[FakeApi, str]) -> None:
    fake, url = api
    with DAG("consumer"):
        mapped = ExternalTaskSensor(
            task_id="mapped",
            external_dag_id="producer",
            external_task_id="fan",
            failed_states=["failed", "upstream_failed"],
        )
        group = ExternalTaskSensor(
            task_id="group",
            external_dag_id="producer",
            external_task_group_id="grp",
            skipped_states=["skipped"],
        )
    ti = ti_with(url)
    ctx = {"ti": ti, "logical_date": LOGICAL}

    def tis(fan: list[str], grp: list[str]) -> None:
        producer_run(
            fake,
            [{"task_id": "fan", "map_index": i, "state": s} for i, s in enumerate(fan)]
            + [{"task_id": f"grp.{i}", "map_index": -1, "state": s} for i, s in enumerate(grp)],
        )

    tis(["success", "running"], ["success", None])
    assert mapped.poke(ctx) is False  # every map index must be in an allowed state
    assert group.poke(ctx) is False  # and every task of the group (None is no state)
    tis(["success", "success"], ["success", "success"])
    assert mapped.poke(ctx) is True and group.poke(ctx) is True
    tis(["failed", "upstream_failed"], ["skipped", "skipped"])
    with pytest.raises(AirflowException, match="failed"):
        mapped.poke(ctx)
    with pytest.raises(AirflowSkipException):
        group.poke(ctx)
    fake.runs.clear()  # no run at that date yet: keep waiting
    assert mapped.poke(ctx) is False and group.poke(ctx) is False
