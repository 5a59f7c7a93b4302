"""The web UI in a real browser (Debian's Chromium, headless) against the real stack.

Every service runs as its own process (tests/e2e/system.py) plus ``ledgerflow ui``;
the browser talks only to the UI, which proxies /api and /auth to the API. Live
updates must arrive from the event stream: no test reloads the page to see a change.

With ``LEDGERFLOW_UI_SCREENSHOTS=DIR`` (``make screenshots``) the screenshot test saves
each main view as DIR/<view>.png; otherwise it is skipped.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .system import System

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWER_PASSWORD = "viewer-password-1"
SECONDS = 1000  # Playwright timeouts are in milliseconds
LIVE = 60 * SECONDS  # a run on a busy 2-core machine

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs /usr/bin/chromium (deploy/local/test.sh installs it with apt)",
    ),
]

# Two DAGs: ``ui_demo`` has params (a trigger form), a task group and a mapped task;
# ``ui_tail`` prints a line, waits for the test's go-file, then prints another, so the
# test can watch the second line arrive in an open log.
DAG_FILE = '''
import os
import time
from datetime import datetime

from ledgerflow.sdk import Param, dag, task, task_group

GO_FILE = "@GO_FILE@"


@dag(
    schedule=None,
    start_date=datetime(2024, 1, 1),
    tags=["ui", "example"],
    params={
        "count": Param(3, type="integer", minimum=1, maximum=10, description="how many"),
        "greeting": Param("hello", type="string"),
    },
)
def ui_demo():
    """Params, a task group and a mapped task."""

    @task
    def start(params=None):
        return list(range(params["count"]))

    @task
    def square(x):
        return x * x

    @task_group
    def report(values):
        @task
        def total(values):
            return sum(values)

        @task
        def announce(t, params=None):
            print(f"{params['greeting']}: the total is {t}")

        announce(total(values))

    report(square.expand(x=start()))


ui_demo()


@dag(schedule=None, start_date=datetime(2024, 1, 1), tags=["ui"])
def ui_tail():
    @task
    def slow():
        print("first line", flush=True)
        deadline = time.monotonic() + 120
        while not os.path.exists(GO_FILE) and time.monotonic() < deadline:
            time.sleep(0.1)
        print("the line after go", flush=True)

    slow()


ui_tail()
'''


@pytest.fixture(scope="module")
def go_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("go") / "go"


@pytest.fixture(scope="module")
def ui(system: System, go_file: Path) -> Iterator[System]:
    """The system with its UI started, and a viewer account."""
    system.start("ui")
    deadline = time.monotonic() + 120  # a loaded 2-core machine starts Python slowly
    while True:
        system.check_alive()
        try:
            if httpx.get(f"{system.ui_url}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"ui not healthy\n{system.logs()}"
        time.sleep(0.1)
    with system.client() as c:
        r = c.post(
            "/api/v2/users",
            json={"username": "vera", "password": VIEWER_PASSWORD, "role": "viewer"},
        )
        assert r.status_code in (200, 201, 409), r.text
    yield system


@pytest.fixture(scope="module")
def browser(ui: System) -> Iterator[Any]:
    """Chromium; after the system (whose setup and teardown use asyncio.run, which
    cannot run while Playwright's sync API holds the thread's event loop)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


_open_pages: list[Any] = []


def _new_page(browser: Any, **context: Any) -> Any:
    ctx = browser.new_context(viewport={"width": 1440, "height": 900}, **context)
    page = ctx.new_page()
    page.set_default_timeout(15 * SECONDS)
    # Shown by pytest when a test fails: what the page said.
    page.on("console", lambda m: print(f"[console.{m.type}] {m.text}"))
    page.on("pageerror", lambda e: print(f"[pageerror] {e}"))
    _open_pages.append(page)
    return page


@pytest.fixture(autouse=True)
def _last_screen(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[None]:
    """Leave a screenshot of every page still open when a test ends (look at it when
    the test failed: its path is printed)."""
    _open_pages.clear()
    yield
    for i, page in enumerate(_open_pages):
        if not page.is_closed():
            path = tmp_path / f"page-{i}.png"
            page.screenshot(path=str(path), full_page=True)
            print(f"screenshot: {path}")


def _sign_in(page: Any, ui: System, username: str = "admin", password: str | None = None) -> None:
    page.goto(ui.ui_url)
    page.fill("#username", username)
    page.fill("#password", password or ui.password)
    page.click("#login-submit")
    page.locator("#session").wait_for(state="visible")


def _wait_live(page: Any) -> None:
    """The page's event stream is connected (the API serves /api/v2/events/stream)."""
    page.locator('#live-status[data-live="live"]').wait_for(timeout=20 * SECONDS)


def _submit_dags(page: Any, ui: System, tmp_path: Path, go_file: Path) -> None:
    """Submit the test DAG file through the UI's upload dialog (once per system)."""
    with ui.client() as c:
        if c.get("/api/v2/dags/ui_demo").status_code == 200:
            return
    source = tmp_path / "ui_dags.py"
    source.write_text(DAG_FILE.replace("@GO_FILE@", str(go_file)))
    page.click("#upload-dag")
    page.set_input_files("#dag-file", str(source))
    page.click('[data-action="upload-submit"]')
    page.locator("#toast").filter(has_text="ui_demo").wait_for()
    # The list follows the DagVersionPublished event: no reload.
    page.locator('tr[data-dag-id="ui_demo"]').wait_for(timeout=30 * SECONDS)


SCHEDULE_DAGS = Path(__file__).parent / "dags" / "ui_schedule.py"


def _submit_schedule_dags(ui: System) -> None:
    """Submit ``ui_daily`` (@daily, updates the asset ``ui_ledger``) and
    ``ui_ledger_report`` (scheduled on it) through the API, once per system."""
    with ui.client() as c:
        if c.get("/api/v2/dags/ui_daily").status_code == 200:
            return
        r = c.post(
            "/api/v2/dagFiles",
            json={"filename": SCHEDULE_DAGS.name, "content": SCHEDULE_DAGS.read_text()},
        )
        assert r.status_code == 201, r.text
    ui.wait_dag("ui_daily")
    ui.wait_dag("ui_ledger_report")


def _latest_run(ui: System, dag_id: str, timeout: float = 30) -> str:
    """The newest run of ``dag_id`` once the projection has it (a loaded machine may
    take a moment between the trigger's toast and the run's row)."""
    deadline = time.monotonic() + timeout
    with ui.client() as c:
        while True:
            runs = c.get(f"/api/v2/dags/{dag_id}/dagRuns", params={"order_by": "-queued_at"}).json()
            if runs["dag_runs"] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert runs["dag_runs"], f"no run of {dag_id} appeared in {timeout} s"
    return str(runs["dag_runs"][0]["dag_run_id"])


def test_wrong_password_shows_an_error(browser: Any, ui: System) -> None:
    page = _new_page(browser)
    page.goto(ui.ui_url)
    page.fill("#password", "wrong")
    page.click("#login-submit")
    error = page.locator("#login-error")
    error.wait_for(state="visible")
    assert "Wrong username or password" in error.inner_text()
    page.context.close()


def test_submit_trigger_and_watch_the_grid_turn_green(
    browser: Any, ui: System, tmp_path: Path, go_file: Path
) -> None:
    page = _new_page(browser)
    _sign_in(page, ui)
    assert page.locator("#user-name").inner_text() == "admin"
    assert page.locator("#user-role").text_content() == "admin"
    page.locator("#health[data-status]").wait_for()
    # The indicator counts the schedulers and executors heard from (ServiceHeartbeat).
    page.locator("#health-text").filter(has_text=re.compile(r"\d+ sched · \d+ exec")).wait_for()
    page.click("#health")
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("table", name="System health").wait_for()
    assert "Schedulers" in dialog.inner_text() and "Executors" in dialog.inner_text()
    dialog.locator('[data-action="close"]').click()
    _wait_live(page)
    _submit_dags(page, ui, tmp_path, go_file)

    row = page.locator('tr[data-dag-id="ui_demo"]')
    assert "ui" in row.inner_text()
    # Search narrows the list.
    page.fill("#dag-search", "ui_tail")
    page.locator('tr[data-dag-id="ui_demo"]').wait_for(state="detached")
    page.fill("#dag-search", "")
    row.wait_for()

    row.get_by_role("button", name="Trigger ui_demo").click()
    page.locator("#trigger-dialog").wait_for()
    page.fill("#param-count", "4")
    page.click('[data-action="trigger-submit"]')
    page.locator("#toast").filter(has_text="Triggered ui_demo").wait_for()
    run_id = _latest_run(ui, "ui_demo")

    # The DAG list's run marks follow the stream.
    row.locator(f'.mark[data-run-id="{run_id}"]').wait_for(timeout=LIVE)
    row.get_by_role("link", name="ui_demo").click()
    page.locator("#grid").wait_for()
    column = page.locator(f'#grid .cell[data-run-id="{run_id}"]')
    column.first.wait_for()
    # Leaves and the group row, all green, without a reload.
    page.wait_for_function(
        """runId => {
          const cells = [...document.querySelectorAll(`#grid .cell[data-run-id="${runId}"]`)];
          return cells.length >= 4 && cells.every((c) => c.dataset.state === "success");
        }""",
        arg=run_id,
        timeout=LIVE,
    )
    # The mapped task shows its count (4 from the form's param), the group its name.
    square = page.locator(f'#grid .cell[data-run-id="{run_id}"][data-task-id="square"]')
    assert square.inner_text().strip() == "4"
    assert page.locator('[data-group-id="report"]').count() == 1
    # The run itself finishes just after its last task (DagRunSucceeded follows it).
    page.wait_for_function(
        """runId => {
          const mark = document.querySelector(`#grid .run-bar-mark[data-run-id="${runId}"]`);
          return mark && (mark.getAttribute("aria-label") || "").includes("success");
        }""",
        arg=run_id,
        timeout=LIVE,
    )
    page.context.close()


def test_bad_conf_in_the_trigger_form_shows_the_validation_message(
    browser: Any, ui: System, tmp_path: Path, go_file: Path
) -> None:
    page = _new_page(browser)
    _sign_in(page, ui)
    _submit_dags(page, ui, tmp_path, go_file)
    page.goto(f"{ui.ui_url}/#/dags/ui_demo/grid")
    page.click("#trigger-button")
    page.locator("#trigger-dialog").wait_for()
    with ui.client() as c:
        runs_before = c.get("/api/v2/dags/ui_demo/dagRuns").json()["total_entries"]

    page.fill("#param-count", "many")
    page.click('[data-action="trigger-submit"]')
    error = page.locator("#trigger-error")
    error.wait_for(state="visible")
    assert "Invalid input for param count" in error.inner_text()
    assert "integer" in error.inner_text()

    page.fill("#param-count", "99")  # over the param's maximum
    page.click('[data-action="trigger-submit"]')
    page.locator("#trigger-error").filter(has_text="at most 10").wait_for()

    # Extra conf in JSON is checked against the params too; the API's answer (400) would
    # be shown the same way.
    page.fill("#param-count", "2")
    page.locator("#trigger-dialog summary").click()
    page.fill("#trigger-conf", '{"count": 0}')
    page.click('[data-action="trigger-submit"]')
    page.locator("#trigger-error").filter(has_text="at least 1").wait_for()
    assert page.locator("#trigger-dialog").is_visible()
    with ui.client() as c:
        assert c.get("/api/v2/dags/ui_demo/dagRuns").json()["total_entries"] == runs_before
    page.context.close()


def test_open_a_log_and_see_a_line_appear_live(
    browser: Any, ui: System, tmp_path: Path, go_file: Path
) -> None:
    page = _new_page(browser)
    _sign_in(page, ui)
    _wait_live(page)
    _submit_dags(page, ui, tmp_path, go_file)
    go_file.unlink(missing_ok=True)
    with ui.client() as c:
        r = c.post("/api/v2/dags/ui_tail/dagRuns", json={"conf": {}})
        assert r.status_code == 200, r.text
        run_id = r.json()["dag_run_id"]

    page.goto(f"{ui.ui_url}/#/dags/ui_tail/grid?run={run_id}")
    cell = page.locator(f'#grid .cell[data-run-id="{run_id}"][data-task-id="slow"]')
    page.wait_for_function(
        """runId => document.querySelector(`#grid .cell[data-run-id="${runId}"][data-task-id="slow"]`)?.dataset.state === "running" """,
        arg=run_id,
        timeout=LIVE,
    )
    cell.click()
    panel = page.locator("#task-panel")
    panel.wait_for()
    page.locator('#log-tail-status[data-live="live"]').wait_for()
    log = page.locator("#log-lines")
    log.filter(has_text="first line").wait_for(timeout=LIVE)
    assert "the line after go" not in log.inner_text()

    go_file.write_text("go")
    log.filter(has_text="the line after go").wait_for(timeout=LIVE)

    # Search highlights the matching line; download is offered.
    page.fill("#log-search", "after go")
    page.locator("#log-lines .log-hit").first.wait_for()
    assert page.locator("#log-search-count").inner_text() == "1 match"
    with page.expect_download() as download:
        page.click("#log-download")
    assert "the line after go" in Path(download.value.path()).read_text()
    page.context.close()


def test_clear_a_task_and_see_it_run_again(
    browser: Any, ui: System, tmp_path: Path, go_file: Path
) -> None:
    page = _new_page(browser)
    _sign_in(page, ui)
    _wait_live(page)
    _submit_dags(page, ui, tmp_path, go_file)
    with ui.client() as c:
        r = c.post("/api/v2/dags/ui_demo/dagRuns", json={"conf": {"count": 2}})
        assert r.status_code == 200, r.text
        run_id = r.json()["dag_run_id"]
    ui.wait_run("ui_demo", run_id)

    page.goto(f"{ui.ui_url}/#/dags/ui_demo/grid?run={run_id}")
    cell = page.locator(f'#grid .cell[data-run-id="{run_id}"][data-task-id="report.total"]')
    cell.wait_for()
    assert cell.get_attribute("data-state") == "success"
    cell.click()
    page.locator('#task-panel .attempts [data-try="1"]').wait_for()
    page.click("#ti-clear")
    dialog = page.locator("#clear-dialog")
    dialog.wait_for()
    # The dry run lists the task and, downstream, announce.
    preview = page.locator("#clear-preview")
    preview.filter(has_text="report.announce").wait_for()
    assert "report.total" in preview.inner_text()
    assert "square" not in preview.inner_text()
    page.click('[data-action="clear-confirm"]')
    dialog.wait_for(state="detached")

    # Attempt 2 appears and finishes, seen through the stream.
    page.locator('#task-panel .attempts [data-try="2"]').wait_for(timeout=LIVE)
    page.wait_for_function(
        """runId => document.querySelector(`#grid .cell[data-run-id="${runId}"][data-task-id="report.total"]`)?.dataset.state === "success"
             && document.querySelector(`#grid .cell[data-run-id="${runId}"][data-task-id="report.announce"]`)?.dataset.state === "success" """,
        arg=run_id,
        timeout=LIVE,
    )
    with ui.client() as c:
        ti = c.get(f"/api/v2/dags/ui_demo/dagRuns/{run_id}/taskInstances/report.total").json()
    assert ti["try_number"] == 2 and ti["state"] == "success"
    page.context.close()


def test_a_viewer_sees_no_trigger_button(
    browser: Any, ui: System, tmp_path: Path, go_file: Path
) -> None:
    admin = _new_page(browser)
    _sign_in(admin, ui)
    _submit_dags(admin, ui, tmp_path, go_file)
    admin.context.close()

    page = _new_page(browser)
    _sign_in(page, ui, "vera", VIEWER_PASSWORD)
    assert page.locator("#user-role").text_content() == "viewer"
    row = page.locator('tr[data-dag-id="ui_demo"]')
    row.wait_for()
    assert row.get_by_role("button", name=re.compile("Trigger")).count() == 0
    assert page.locator("#upload-dag").count() == 0
    assert row.get_by_role("switch").is_disabled()
    page.goto(f"{ui.ui_url}/#/dags/ui_demo/grid")
    page.locator("#grid").wait_for()
    page.locator("#dag-pause-toggle").wait_for()
    assert page.locator("#trigger-button").count() == 0
    assert page.locator("#run-clear").count() == 0
    page.context.close()


# ------------------------------------------------------------------------ screenshots
SHOTS = os.environ.get("LEDGERFLOW_UI_SCREENSHOTS")


@pytest.mark.skipif(not SHOTS, reason="set LEDGERFLOW_UI_SCREENSHOTS=DIR (make screenshots)")
def test_screenshots(browser: Any, ui: System, tmp_path: Path, go_file: Path) -> None:
    out = Path(SHOTS or ".")
    out.mkdir(parents=True, exist_ok=True)

    def shot(page: Any, name: str) -> None:
        page.evaluate("document.getElementById('toast').hidden = true")
        page.screenshot(path=str(out / f"{name}.png"))

    page = _new_page(browser, color_scheme="light")
    page.goto(ui.ui_url)
    page.locator("#login-form").wait_for()
    shot(page, "login")
    _sign_in(page, ui)
    _submit_dags(page, ui, tmp_path, go_file)
    go_file.write_text("go")
    with ui.client() as c:
        runs = [
            c.post("/api/v2/dags/ui_demo/dagRuns", json={"conf": {"count": n}}).json()["dag_run_id"]
            for n in (2, 5, 3)
        ]
        tail = c.post("/api/v2/dags/ui_tail/dagRuns", json={"conf": {}}).json()["dag_run_id"]
    for run_id in runs:
        ui.wait_run("ui_demo", run_id)
    ui.wait_run("ui_tail", tail)
    run_id = runs[-1]

    page.goto(f"{ui.ui_url}/#/dags")
    page.locator('tr[data-dag-id="ui_demo"] .mark').first.wait_for()
    shot(page, "dag-list")

    base = f"{ui.ui_url}/#/dags/ui_demo"
    page.goto(f"{base}/grid?run={run_id}")
    page.locator(f'#grid .cell[data-run-id="{run_id}"][data-state="success"]').first.wait_for()
    shot(page, "grid")

    page.goto(f"{base}/graph?run={run_id}")
    page.locator('#graph .node[data-state="success"]').first.wait_for()
    shot(page, "graph")

    page.goto(f"{base}/gantt?run={run_id}")
    page.locator("#gantt .gantt-row").first.wait_for()
    shot(page, "gantt")

    page.goto(f"{base}/code?run={run_id}")
    page.wait_for_timeout(1500)
    shot(page, "code")

    page.goto(f"{base}/history?run={run_id}")
    page.wait_for_timeout(2000)
    shot(page, "history")

    page.goto(f"{ui.ui_url}/#/dags/ui_tail/grid?run={tail}&task=slow")
    page.locator("#log-lines").filter(has_text="the line after go").wait_for()
    shot(page, "task-log")

    page.goto(f"{base}/grid?run={run_id}")
    page.click("#trigger-button")
    page.locator("#trigger-dialog").wait_for()
    page.fill("#param-count", "many")
    page.click('[data-action="trigger-submit"]')
    page.locator("#trigger-error").wait_for(state="visible")
    shot(page, "trigger-form")
    page.keyboard.press("Escape")

    # Schedules, backfills and assets (tests/e2e/dags/ui_schedule.py).
    _submit_schedule_dags(ui)
    with ui.client() as c:
        r = c.post(
            "/api/v2/backfills",
            json={
                "dag_id": "ui_daily",
                "from_date": "2026-01-01T00:00:00Z",
                "to_date": "2026-01-05T00:00:00Z",
                "max_active_runs": 2,
            },
        )
        assert r.status_code == 200, r.text
        backfill = r.json()["id"]
        asset = c.get("/api/v2/assets", params={"name_pattern": "ui_ledger"}).json()["assets"][0]
        r = c.post(
            "/api/v2/assets/events",
            json={"asset_id": asset["id"], "extra": {"rows": 1204, "source": "ledger export"}},
        )
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + 120
        while c.get(f"/api/v2/backfills/{backfill}").json()["completed_at"] is None:
            assert time.monotonic() < deadline, f"backfill {backfill} did not complete"
            time.sleep(0.3)
    daily = f"{ui.ui_url}/#/dags/ui_daily"
    page.goto(f"{daily}/grid")
    page.wait_for_function(
        """() => document.querySelectorAll('#grid .run-bar-mark[data-run-type="backfill"][data-state="success"]').length === 5"""
    )
    page.click("#backfill-button")
    page.fill("#backfill-from", "2026-01-06T00:00")
    page.fill("#backfill-to", "2026-01-12T00:00")
    page.wait_for_function("() => document.querySelectorAll('#backfill-dates li').length === 7")
    shot(page, "backfill")
    page.keyboard.press("Escape")
    page.goto(f"{daily}/backfills")
    page.locator('.backfill[data-status="completed"]').wait_for()
    shot(page, "backfills")
    page.goto(f"{ui.ui_url}/#/assets/{asset['id']}")
    page.locator("#asset-events-table tr", has_text="ledger export").wait_for()
    shot(page, "assets")
    page.context.close()

    dark = _new_page(browser, color_scheme="dark")
    _sign_in(dark, ui)
    dark.goto(f"{base}/grid?run={run_id}&task=report.announce")
    dark.locator("#log-lines").filter(has_text="the total is").wait_for()
    shot(dark, "grid-dark")
    dark.goto(f"{ui.ui_url}/#/audit")
    dark.locator("#audit-table, .unavailable").first.wait_for()
    shot(dark, "audit-log-dark")
    dark.context.close()
