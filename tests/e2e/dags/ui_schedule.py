"""DAGs for the UI's schedule, backfill and asset views (tests/e2e/test_ui_schedule_browser.py
and the screenshots): ``ui_daily`` runs @daily (no catchup) and its task updates the
asset ``ui_ledger``; ``ui_ledger_report`` is scheduled on that asset."""

from datetime import UTC, datetime

from ledgerflow.sdk import DAG, Asset, task

LEDGER = Asset(name="ui_ledger", uri="s3://ui/ledger", group="finance")

with DAG(
    "ui_daily",
    schedule="@daily",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["ui", "schedule"],
    params={"region": "emea"},
):

    @task(outlets=[LEDGER])
    def load_ledger(*, outlet_events, params=None):
        outlet_events[LEDGER].extra["region"] = params["region"]
        return 1

    load_ledger()

with DAG("ui_ledger_report", schedule=[LEDGER], tags=["ui", "schedule"]):

    @task
    def report():
        return "reported"

    report()
