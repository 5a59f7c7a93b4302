"""The UI's schedule, backfill and asset views in a real browser (Debian's Chromium,
headless) against the real stack, with the fixtures of test_ui_browser.py.

- The DAG page shows the schedule in words, the next run and each run's type; the
  backfill dialog lists, by a dry run, the logical dates it would run, and once created
  the backfill's runs appear in the grid and its progress in the Backfills tab, from the
  event stream (no reload).
- The Assets page lists an asset with its group, producing task and scheduled DAG; an
  event created from the UI, and one posted to the API from outside, appear in its
  event list without a reload. A viewer sees none of the write buttons.
"""

from __future__ import annotations

import re
from typing import Any

from . import test_ui_browser as base
from .system import System
from .test_ui_browser import LIVE, VIEWER_PASSWORD, _new_page, _sign_in, _wait_live

pytestmark = base.pytestmark
# The browser test fixtures (module-scoped: this module gets its own system and UI).
go_file = base.go_file
ui = base.ui
browser = base.browser
_last_screen = base._last_screen
_submit_schedule_dags = base._submit_schedule_dags


def _watch_stream(page: Any) -> None:
    """Once the page is live, record every change of its stream's status: live updates
    must come from one held stream, not from reconnects (each reconnect re-reads the
    views, which would hide a stream that breaks on every event)."""
    _wait_live(page)
    page.evaluate(
        """() => {
          window.__liveChanges = [];
          new MutationObserver(() => window.__liveChanges.push(
            document.getElementById("live-status").dataset.live)).observe(
            document.getElementById("live-status"), { attributes: true, attributeFilter: ["data-live"] });
        }"""
    )


def _assert_stream_held(page: Any) -> None:
    changes = page.evaluate("() => window.__liveChanges")
    assert changes == [], f"the event stream dropped while the test ran: {changes}"


DATES = ["2026-01-01 00:00 UTC", "2026-01-02 00:00 UTC", "2026-01-03 00:00 UTC"]


def test_backfill_dry_run_then_its_runs_appear_live(browser: Any, ui: System) -> None:
    _submit_schedule_dags(ui)
    page = _new_page(browser)
    _sign_in(page, ui)
    page.goto(f"{ui.ui_url}/#/dags/ui_daily/grid")
    _watch_stream(page)
    page.locator("#grid").wait_for()
    schedule = page.locator("#dag-schedule")
    assert "None" not in schedule.inner_text(), schedule.inner_text()
    assert "0 0 * * *" in (schedule.get_attribute("title") or "")

    page.click("#backfill-button")
    dialog = page.locator("#backfill-dialog")
    dialog.wait_for()
    # A bad conf is refused before anything is sent.
    page.fill("#backfill-from", "2026-01-01T00:00")
    page.fill("#backfill-to", "2026-01-03T00:00")
    page.fill("#backfill-conf", "{not json")
    page.locator("#backfill-error").filter(has_text="not valid JSON").wait_for()
    assert page.locator('[data-action="backfill-submit"]').is_disabled()
    page.fill("#backfill-conf", '{"region": "apac"}')
    # The dry run lists the three daily logical dates, oldest first.
    dates = page.locator("#backfill-dates li")
    page.wait_for_function("() => document.querySelectorAll('#backfill-dates li').length === 3")
    assert [d.strip() for d in dates.all_inner_texts()] == DATES
    # Run backwards: the same dates, newest first.
    page.check("#backfill-backwards")
    page.wait_for_function(
        "() => document.querySelector('#backfill-dates li')?.textContent.includes('2026-01-03')"
    )
    assert [d.strip() for d in dates.all_inner_texts()] == DATES[::-1]
    page.uncheck("#backfill-backwards")
    page.wait_for_function(
        "() => document.querySelector('#backfill-dates li')?.textContent.includes('2026-01-01')"
    )
    page.fill("#backfill-max-active", "2")
    page.locator('[data-action="backfill-submit"]:not([disabled])').wait_for()
    page.click('[data-action="backfill-submit"]')
    page.wait_for_function(
        """() => !document.getElementById("backfill-dialog")
                 || !document.getElementById("backfill-error").hidden""",
        timeout=LIVE,
    )
    assert dialog.count() == 0, page.locator("#backfill-error").inner_text()
    page.locator("#toast").filter(
        has_text=re.compile(r"Backfill \d+ of ui_daily created")
    ).wait_for()

    # The backfill's runs arrive in the grid from the stream, marked as backfill runs.
    page.wait_for_function(
        """() => document.querySelectorAll('#grid .run-bar-mark[data-run-type="backfill"]').length === 3""",
        timeout=LIVE,
    )
    mark = page.locator('#grid .run-bar-mark[data-run-type="backfill"]').first
    assert "(backfill)" in (mark.get_attribute("aria-label") or "")
    # (Airflow 3's @daily is a CronTriggerTimetable: a zero-length interval at the date.)
    assert "data interval 2026-01-01 00:00 UTC → 2026-01-01 00:00 UTC" in (
        mark.get_attribute("aria-label") or ""
    )
    page.wait_for_function(
        """() => {
          const marks = [...document.querySelectorAll('#grid .run-bar-mark[data-run-type="backfill"]')];
          return marks.length === 3 && marks.every((m) => m.dataset.state === "success");
        }""",
        timeout=LIVE,
    )
    # The run bar names the selected run's type and data interval.
    mark.click()
    page.locator("#run-data-interval").filter(has_text="2026-01-01 00:00 UTC").wait_for()
    assert page.locator('.run-bar .run-type[data-run-type="backfill"]').count() == 1

    # The Backfills tab shows it complete, with its three runs.
    page.click("#tab-backfills")
    card = page.locator(".backfill").first
    card.wait_for()
    page.locator('.backfill[data-status="completed"]').wait_for(timeout=LIVE)
    assert "3 of 3 runs finished" in card.inner_text()
    assert card.locator('.mark[data-state="success"]').count() == 3
    assert "Max active runs" in card.inner_text() and "2" in card.inner_text()
    # The runs table shows the type and data interval too.
    page.click("#tab-runs")
    backfill_rows = page.locator('#runs-table tr:has(.run-type[data-run-type="backfill"])')
    backfill_rows.first.wait_for()
    assert backfill_rows.count() == 3
    assert "2026-01-01 00:00 UTC → 2026-01-01 00:00 UTC" in page.locator("#runs-table").inner_text()
    _assert_stream_held(page)
    page.context.close()


def test_backfill_pause_and_cancel_follow_the_stream(browser: Any, ui: System) -> None:
    _submit_schedule_dags(ui)
    with ui.client() as c:
        r = c.post(
            "/api/v2/backfills",
            json={
                "dag_id": "ui_daily",
                # Nine months of days one at a time: still running when the page shows it.
                "from_date": "2026-02-01T00:00:00Z",
                "to_date": "2026-10-31T00:00:00Z",
                "max_active_runs": 1,
            },
        )
        assert r.status_code == 200, r.text
        backfill_id = r.json()["id"]
    page = _new_page(browser)
    _sign_in(page, ui)
    page.goto(f"{ui.ui_url}/#/dags/ui_daily/backfills")
    _watch_stream(page)
    card = page.locator(f'.backfill[data-backfill-id="{backfill_id}"]')
    card.wait_for()
    assert card.locator('[data-backfill-action="pause"]').count() == 1, card.inner_text()
    card.locator('[data-backfill-action="pause"]').click()
    page.locator(f'.backfill[data-backfill-id="{backfill_id}"][data-status="paused"]').wait_for(
        timeout=LIVE
    )
    card.locator('[data-backfill-action="cancel"]').click()
    page.locator('[data-action="confirm"]').click()
    page.locator(f'.backfill[data-backfill-id="{backfill_id}"][data-status="cancelled"]').wait_for(
        timeout=LIVE
    )
    assert card.locator("[data-backfill-action]").count() == 0
    _assert_stream_held(page)
    page.context.close()


def test_assets_page_lists_the_asset_and_shows_new_events_live(browser: Any, ui: System) -> None:
    _submit_schedule_dags(ui)
    page = _new_page(browser)
    _sign_in(page, ui)
    _watch_stream(page)
    page.locator("#nav-assets").click()
    row = page.locator('#assets-table tr[data-asset-name="ui_ledger"]')
    row.wait_for()
    text = row.inner_text()
    assert "finance" in text and "ui_daily" in text and "load_ledger" in text
    assert "ui_ledger_report" in text
    asset_id = row.get_attribute("data-asset-id")

    # Create an event from the UI: a bad extra is refused, a good one is listed.
    row.locator('[data-asset-action="create-event"]').click()
    page.locator("#asset-event-dialog").wait_for()
    page.fill("#asset-event-extra", "[1, 2]")
    page.click('[data-action="asset-event-submit"]')
    page.locator("#asset-event-error").filter(has_text="JSON object").wait_for()
    page.fill("#asset-event-extra", '{"rows": 7, "note": "from the UI"}')
    page.click('[data-action="asset-event-submit"]')
    page.locator("#asset-event-dialog").wait_for(state="detached")
    events = page.locator("#asset-events-table")
    events.locator("tr", has_text="from the UI").wait_for()
    assert events.locator('tr:has-text("from the UI") [data-source="api"]').count() == 1
    assert page.url.endswith(f"#/assets/{asset_id}")

    # An event posted to the API by someone else arrives through the stream.
    with ui.client() as c:
        r = c.post(
            "/api/v2/assets/events", json={"asset_id": int(asset_id), "extra": {"by": "curl"}}
        )
        assert r.status_code == 200, r.text
    events.locator("tr", has_text='"by":"curl"').wait_for(timeout=LIVE)
    # The scheduled DAG ran for it (asset-triggered), shown with the event.
    page.locator(
        '#asset-events-table tr:has-text("curl") a[href*="ui_ledger_report"]'
    ).first.wait_for(timeout=LIVE)
    _assert_stream_held(page)
    page.context.close()


def test_a_viewer_sees_no_backfill_or_asset_buttons(browser: Any, ui: System) -> None:
    _submit_schedule_dags(ui)
    page = _new_page(browser)
    _sign_in(page, ui, "vera", VIEWER_PASSWORD)
    page.goto(f"{ui.ui_url}/#/dags/ui_daily/backfills")
    page.locator("#backfills-count").wait_for()
    assert page.locator("#backfill-button").count() == 0
    assert page.locator("[data-backfill-action]").count() == 0
    page.goto(f"{ui.ui_url}/#/assets")
    page.locator('#assets-table tr[data-asset-name="ui_ledger"]').wait_for()
    assert page.locator("[data-asset-action]").count() == 0
    page.context.close()
