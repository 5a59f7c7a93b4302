"""The UI in a real browser: its own process (`ledgerflow ui`) in front of a fake API.

The fake API is a small FastAPI app serving the contract's shapes (docs/CONTRACTS-dev.md),
so this test needs neither Kafka nor Postgres. It signs in, sees the DAG list with run
marks, triggers a run and sees it appear, and leaves screenshots in /tmp.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Header, HTTPException

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "s3cret-for-tests"
TOKEN = "fake-token-123"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs /usr/bin/chromium (apt-get install -y chromium); CI must install it",
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class FakeApiState:
    """What the fake API serves, and what the UI asked of it."""

    runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    triggered: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def _run(dag_id: str, n: int, state: str) -> dict[str, Any]:
    ts = f"2025-01-0{n}T10:00:00.000000+00:00"
    return {
        "dag_run_id": f"manual__{ts}",
        "dag_id": dag_id,
        "state": state,
        "run_type": "manual",
        "conf": {},
        "logical_date": ts,
        "queued_at": ts,
        "start_date": ts if state != "queued" else None,
        "end_date": ts if state in ("success", "failed") else None,
        "dag_version_id": "v1",
    }


def make_fake_api(state: FakeApiState) -> FastAPI:
    app = FastAPI()
    dags = [
        {
            "dag_id": "etl_daily",
            "is_paused": False,
            "tags": ["etl", "daily"],
            "owners": ["data-team"],
            "fileloc": "etl_daily.py",
            "description": "Load yesterday's orders",
            "latest_version_id": "v1",
        },
        {
            "dag_id": "reports_weekly",
            "is_paused": True,
            "tags": [],
            "owners": ["airflow"],
            "fileloc": "reports.py",
            "description": None,
            "latest_version_id": "v2",
        },
    ]
    state.runs = {
        "etl_daily": [
            _run("etl_daily", 1, "success"),
            _run("etl_daily", 2, "failed"),
            _run("etl_daily", 3, "success"),
            _run("etl_daily", 4, "running"),
        ],
        "reports_weekly": [],
    }

    def check(authorization: str | None) -> None:
        if authorization != f"Bearer {TOKEN}":
            raise HTTPException(401, "Not authenticated")

    @app.post("/auth/token")
    def token(body: dict[str, Any]) -> dict[str, str]:
        if body.get("username") != "admin" or body.get("password") != PASSWORD:
            raise HTTPException(401, "invalid credentials")
        return {"access_token": TOKEN, "token_type": "bearer"}

    @app.get("/api/v2/dags")
    def list_dags(authorization: str | None = Header(None)) -> dict[str, Any]:
        check(authorization)
        return {"dags": dags, "total_entries": len(dags)}

    @app.get("/api/v2/dags/{dag_id}/dagRuns")
    def list_runs(dag_id: str, authorization: str | None = Header(None)) -> dict[str, Any]:
        check(authorization)
        runs = state.runs.get(dag_id, [])
        return {"dag_runs": runs, "total_entries": len(runs)}

    @app.post("/api/v2/dags/{dag_id}/dagRuns")
    def trigger(
        dag_id: str, body: dict[str, Any], authorization: str | None = Header(None)
    ) -> dict[str, Any]:
        check(authorization)
        state.triggered.append((dag_id, body))
        run = _run(dag_id, 9, "queued") | {"dag_run_id": f"manual__{len(state.triggered)}"}
        state.runs.setdefault(dag_id, []).append(run)
        return run

    return app


@pytest.fixture(scope="module")
def fake_api() -> Iterator[tuple[str, FakeApiState]]:
    state = FakeApiState()
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(make_fake_api(state), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "fake API did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", state
    server.should_exit = True
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def ui_url(
    fake_api: tuple[str, FakeApiState], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """`ledgerflow ui` as its own process, pointed at the fake API."""
    api_url, _ = fake_api
    port = _free_port()
    log = tmp_path_factory.mktemp("ui") / "ui.log"
    env = {
        **os.environ,
        "LEDGERFLOW_API_URL": api_url,
        "LEDGERFLOW_UI_HOST": "127.0.0.1",
        "LEDGERFLOW_UI_PORT": str(port),
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ledgerflow.cli.main", "ui"], env=env, stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, f"ui exited early:\n{log.read_text()}"
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"ui not healthy:\n{log.read_text()}"
            time.sleep(0.1)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=15)
    # SIGTERM is a clean stop for every ledgerflow service.
    assert code == 0, f"ui exited with {code}:\n{log.read_text()}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


def _sign_in(page: Any, password: str) -> None:
    page.fill("#password", password)
    page.click("#login-submit")


def test_wrong_password_shows_an_error(browser: Any, ui_url: str) -> None:
    page = browser.new_page()
    page.goto(ui_url)
    _sign_in(page, "wrong")
    error = page.locator("#login-error")
    error.wait_for(state="visible", timeout=5000)
    assert "Wrong username or password" in error.inner_text()
    assert page.locator("#dags-view").is_hidden()
    page.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_sign_in_list_dags_with_run_marks_and_trigger(
    browser: Any, ui_url: str, fake_api: tuple[str, FakeApiState], scheme: str
) -> None:
    _, state = fake_api
    context = browser.new_context(viewport={"width": 1200, "height": 640}, color_scheme=scheme)
    page = context.new_page()
    page.goto(ui_url)
    _sign_in(page, PASSWORD)

    etl = page.locator('tr[data-dag-id="etl_daily"]')
    etl.wait_for(timeout=5000)
    assert page.locator("#dag-rows tr").count() == 2
    assert "data-team" in etl.inner_text()
    assert "active" in etl.inner_text()
    assert "paused" in page.locator('tr[data-dag-id="reports_weekly"]').inner_text()
    assert "no runs yet" in page.locator('tr[data-dag-id="reports_weekly"]').inner_text()

    marks = etl.locator(".marks .mark")
    states_before = [marks.nth(i).get_attribute("data-state") for i in range(marks.count())]
    assert states_before[:4] == ["success", "failed", "success", "running"]
    assert "failed" in (marks.nth(1).get_attribute("title") or "")
    assert etl.locator(".run-label").inner_text() == states_before[-1]

    # The session survives a reload (token kept in sessionStorage).
    page.reload()
    etl.wait_for(timeout=5000)

    triggered_before = len(state.triggered)
    etl.get_by_role("button", name="Trigger").click()
    page.locator("#toast").wait_for(state="visible", timeout=5000)
    assert "Triggered etl_daily" in page.locator("#toast").inner_text()
    assert len(state.triggered) == triggered_before + 1
    dag_id, body = state.triggered[-1]
    assert dag_id == "etl_daily" and body["conf"] == {} and body["logical_date"]

    page.wait_for_function(
        "n => document.querySelectorAll('tr[data-dag-id=\"etl_daily\"] .mark').length > n",
        arg=len(states_before),
        timeout=8000,
    )
    assert etl.locator(".mark").last.get_attribute("data-state") == "queued"
    assert etl.locator(".run-label").inner_text() == "queued"

    page.screenshot(path=f"/tmp/ledgerflow-ui-{scheme}.png", full_page=True)
    context.close()


def test_sign_out_returns_to_the_login_form(browser: Any, ui_url: str) -> None:
    page = browser.new_page()
    page.goto(ui_url)
    _sign_in(page, PASSWORD)
    page.locator("#dag-rows tr").first.wait_for(timeout=5000)
    page.click("#sign-out")
    page.locator("#login-form").wait_for(state="visible", timeout=5000)
    page.reload()
    assert page.locator("#login-form").is_visible()
    page.close()
