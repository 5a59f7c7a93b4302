"""Bad input gets a clear error and loses nothing; malformed messages are set aside."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from .system import System

BAD = Path(__file__).resolve().parents[2] / "examples" / "bad_dags"

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("filename", "kind"),
    [
        ("syntax_error.py", "syntax"),
        ("import_error.py", "import"),
        ("cycle.py", "cycle"),
        ("duplicate_task_id.py", "duplicate_task_id"),
    ],
)
def test_bad_dag_files_get_422_with_line_and_publish_nothing(system: System, filename, kind):
    content = (BAD / filename).read_text()
    # Each bad file's docstring names the line the error must be reported on.
    expected_line = int(re.search(r"line (\d+)", content.splitlines()[0]).group(1))
    with system.client() as c:
        r = c.post("/api/v2/dagFiles", json={"filename": filename, "content": content})
        assert r.status_code == 422, r.text
        detail = r.json()["detail"]
        assert detail["kind"] == kind
        assert detail["lineno"] == expected_line, detail
        assert detail["filename"] == filename
        assert detail["message"]
        dags = c.get("/api/v2/dags").json()["dags"]
    assert not any(d["fileloc"].endswith(filename) for d in dags)


def test_requests_without_a_token_get_401(system: System):
    r = httpx.get(f"{system.api_url}/api/v2/dags")
    assert r.status_code == 401
    r = httpx.get(f"{system.api_url}/api/v2/dags", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    r = httpx.post(f"{system.api_url}/auth/token", json={"username": "admin", "password": "x"})
    assert r.status_code == 401


def test_malformed_command_goes_to_dlq_and_next_command_is_processed(system: System):
    hello = Path(__file__).resolve().parents[2] / "examples" / "hello.py"
    with system.client() as c:
        r = c.post("/api/v2/dagFiles", json={"filename": "hello.py", "content": hello.read_text()})
        assert r.status_code == 201, r.text
        dag_id = r.json()["dags"][0]["dag_id"]
    system.wait_dag(dag_id)

    async def poison() -> None:
        p = AIOKafkaProducer(bootstrap_servers=system.kafka_bootstrap)
        await p.start()
        try:
            await p.send_and_wait(f"{system.prefix}.commands", b"{not json", key=dag_id.encode())
        finally:
            await p.stop()

    asyncio.run(poison())
    with system.client() as c:
        r = c.post(f"/api/v2/dags/{dag_id}/dagRuns", json={"conf": {}})
        assert r.status_code == 200, r.text
        run_id = r.json()["dag_run_id"]
    assert system.wait_run(dag_id, run_id)["state"] == "success"

    async def dead_letters() -> list:
        c = AIOKafkaConsumer(
            f"{system.prefix}.dlq",
            bootstrap_servers=system.kafka_bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await c.start()
        try:
            out: list = []
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and not out:
                batch = await c.getmany(timeout_ms=500)
                out += [r for recs in batch.values() for r in recs]
            return out
        finally:
            await c.stop()

    letters = [r for r in asyncio.run(dead_letters()) if r.value == b"{not json"]
    assert letters, "the malformed command did not reach the dead-letter topic"
    headers = dict(letters[0].headers)
    assert headers["ledgerflow-dlq-topic"].decode() == f"{system.prefix}.commands"
    assert b"not JSON" in headers["ledgerflow-dlq-reason"]
