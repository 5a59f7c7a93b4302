"""``ledgerflow dags backfill`` and ``ledgerflow backfills ...`` against a fake API."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .test_cli_client import FakeApi, api, run  # noqa: F401 (fixture)

BACKFILL: dict[str, Any] = {
    "id": 7,
    "dag_id": "etl",
    "from_date": "2026-01-01T00:00:00.000000+00:00",
    "to_date": "2026-01-02T00:00:00.000000+00:00",
    "dag_run_conf": {},
    "is_paused": False,
    "reprocess_behavior": "failed",
    "max_active_runs": 2,
    "created_at": "2026-11-24T00:00:00.000000+00:00",
    "completed_at": None,
    "updated_at": "2026-11-24T00:00:00.000000+00:00",
    "dag_display_name": "etl",
    "cancelled": False,
}


def _runs(*states: str) -> list[dict[str, Any]]:
    return [
        {
            "sort_ordinal": n,
            "logical_date": f"2026-01-0{n}T00:00:00.000000+00:00",
            "action": "create",
            "dag_run_id": f"backfill__2026-01-0{n}T00:00:00+00:00",
            "exception_reason": None,
            "state": state,
        }
        for n, state in enumerate(states, start=1)
    ]


def test_backfill_sends_airflows_fields(
    api: FakeApi,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    api.route("POST", "/api/v2/backfills", 200, BACKFILL)
    argv = ["dags", "backfill", "etl", "--start", "2026-01-01", "--end", "2026-01-02"]
    argv += ["--reprocess-behavior", "failed", "--max-active-runs", "2", "--conf", '{"a": 1}']
    assert run(api, *argv, "--run-backwards") == 0
    assert api.bodies("POST", "/api/v2/backfills") == [
        {
            "dag_id": "etl",
            "from_date": "2026-01-01",
            "to_date": "2026-01-02",
            "run_backwards": True,
            "dag_run_conf": {"a": 1},
            "reprocess_behavior": "failed",
            "max_active_runs": 2,
        }
    ]
    assert capsys.readouterr().out == "backfill 7 created for etl\n"


def test_backfill_dry_run_prints_the_dates(
    api: FakeApi,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    dates = ["2026-01-01T00:00:00.000000+00:00", "2026-01-02T00:00:00.000000+00:00"]
    body = {"backfills": [{"logical_date": d} for d in dates], "total_entries": 2}
    api.route("POST", "/api/v2/backfills/dry_run", 200, body)
    argv = ["dags", "backfill", "etl", "--start", "2026-01-01", "--end", "2026-01-02", "--dry-run"]
    assert run(api, *argv) == 0
    assert capsys.readouterr().out.split() == dates
    assert api.bodies("POST", "/api/v2/backfills") == []


@pytest.mark.parametrize(
    ("states", "code"), [(("success", "success"), 0), (("success", "failed"), 1)]
)
def test_backfill_wait_follows_it_to_completion(
    api: FakeApi,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    states: tuple[str, ...],
    code: int,
) -> None:
    api.route("POST", "/api/v2/backfills", 200, BACKFILL)
    answers = iter(
        [
            httpx.Response(404, json={"detail": "Backfill not found"}),  # not projected yet
            httpx.Response(200, json={**BACKFILL, "dag_runs": _runs("running", "queued")}),
            httpx.Response(
                200,
                json={
                    **BACKFILL,
                    "completed_at": BACKFILL["created_at"],
                    "dag_runs": _runs(*states),
                },
            ),
        ]
    )
    api.route("GET", "/api/v2/backfills/7", handler=lambda _req: next(answers))
    argv = ["dags", "backfill", "etl", "--start", "2026-01-01", "--end", "2026-01-02", "--wait"]
    assert run(api, *argv, "--poll", "0.01") == code
    err = capsys.readouterr().err
    assert f"backfill 7 completed: {states.count('success')} of 2 run(s) succeeded" in err


def test_backfills_list_show_and_change(
    api: FakeApi,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    api.route("GET", "/api/v2/backfills", 200, {"backfills": [BACKFILL], "total_entries": 1})
    api.route("GET", "/api/v2/backfills/7", 200, {**BACKFILL, "dag_runs": _runs("success")})
    api.route("PUT", "/api/v2/backfills/7/pause", 200, {**BACKFILL, "is_paused": True})
    api.route(
        "PUT", "/api/v2/backfills/7/cancel", 409, {"detail": "Backfill is already completed."}
    )
    assert run(api, "backfills", "list", "etl") == 0
    assert "etl" in capsys.readouterr().out
    assert run(api, "backfills", "show", "7") == 0
    assert "backfill__2026-01-01T00:00:00+00:00" in capsys.readouterr().out
    assert run(api, "backfills", "pause", "7") == 0
    assert capsys.readouterr().out == "backfill 7 paused\n"
    assert run(api, "backfills", "cancel", "7") == 1
    assert "already completed" in capsys.readouterr().err
    assert run(api, "backfills", "unpause", "8") == 1
    assert "does not exist" in capsys.readouterr().err
