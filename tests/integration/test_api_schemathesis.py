"""Schemathesis over the live API's ``/openapi.json`` (issue 5): for every operation,
generated requests (valid and invalid) never get a 5xx, and every answer matches the
schema the operation declares.

The API runs in a real uvicorn server (in a thread, with its own event loop) against
real Kafka and Postgres, with the projector running beside it and one DAG and run
projected, authenticated as the bootstrap admin. Examples per operation are bounded
(``LEDGERFLOW_SCHEMATHESIS_EXAMPLES``, default 8) to keep the run near a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from ledgerflow.api import projector
from ledgerflow.api.server import serve
from ledgerflow.common.kafka_io import ensure_topics
from ledgerflow.common.secrets import generate_key
from ledgerflow.common.settings import Settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

pytestmark = pytest.mark.integration

PASSWORD = "s3cret-schemathesis"
EXAMPLES = int(os.environ.get("LEDGERFLOW_SCHEMATHESIS_EXAMPLES", "8"))
EXCLUDED_PATHS = (
    "/api/v2/events/stream",  # a stream that never ends
    "/auth/token",  # random logins would only lock the admin out (test_api_access)
)
HELLO = """\
from ledgerflow.sdk import DAG, task

with DAG("fuzzed", tags=["fuzz"]):
    @task
    def hi():
        return 1

    hi()
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _services(settings: Settings) -> Iterator[None]:
    """The API server and the projector, on an event loop in a thread of their own."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    tasks: list[asyncio.Task[Any]] = []

    async def main() -> None:
        await ensure_topics(settings)
        tasks.append(asyncio.create_task(projector.run(settings)))
        tasks.append(asyncio.create_task(serve(settings)))
        ready.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks)

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    ready.wait(30)
    try:
        yield
    finally:
        for task in tasks:
            loop.call_soon_threadsafe(task.cancel)
        thread.join(30)
        loop.close()


def _wait_until(check: Any, within_s: float = 30) -> Any:
    deadline = time.monotonic() + within_s
    while True:
        with contextlib.suppress(requests.RequestException, AssertionError, KeyError):
            result = check()
            if result:
                return result
        if time.monotonic() > deadline:
            raise TimeoutError("the API did not get ready")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def live_api(module_database: str, kafka_bootstrap: str) -> Iterator[tuple[str, dict[str, str]]]:
    """``(base URL, auth headers)`` of a running API with a DAG and a run projected."""
    port = _free_port()
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        database_url=module_database,
        topic_prefix=f"dev-schemathesis-{uuid.uuid4().hex[:8]}",
        partitions=1,
        work_partitions=1,
        admin_password=PASSWORD,
        fernet_key=generate_key(),
        api_host="127.0.0.1",
        api_port=port,
    )
    base = f"http://127.0.0.1:{port}"
    with _services(settings):
        _wait_until(lambda: requests.get(f"{base}/openapi.json", timeout=5).ok)
        token = requests.post(
            f"{base}/auth/token", json={"username": "admin", "password": PASSWORD}, timeout=10
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        submitted = requests.post(
            f"{base}/api/v2/dagFiles",
            json={"filename": "fuzzed.py", "content": HELLO},
            headers=auth,
            timeout=60,
        )
        assert submitted.status_code == 201, submitted.text
        _wait_until(lambda: requests.get(f"{base}/api/v2/dags/fuzzed", headers=auth).ok)
        yield base, auth


def _check_operation(operation: Any, base: str, auth: dict[str, str]) -> None:
    @given(case=operation.as_strategy())
    @hypothesis_settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def check(case: Any) -> None:
        case.call_and_validate(
            base_url=base,
            headers=auth,
            checks=[not_a_server_error, response_schema_conformance],
            timeout=30,
        )

    check()


def test_api_conforms_to_its_schema(live_api: tuple[str, dict[str, str]]) -> None:
    """Every operation, each with its own bounded Hypothesis run; all failures are
    reported together. (Schemathesis' pytest plugin does not run under this pytest, so
    the operations are driven here.)"""
    base, auth = live_api
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    failures: list[str] = []
    checked = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path in EXCLUDED_PATHS:
            continue
        checked += 1
        try:
            _check_operation(operation, base, auth)
        except (Exception, BaseExceptionGroup) as exc:  # one report for every operation
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert checked > 40
    assert not failures, "\n\n".join(failures)
