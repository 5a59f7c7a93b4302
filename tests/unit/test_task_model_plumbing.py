"""Pure parts of the ADR 0006 plumbing: the executor's outcome parsing and report
mapping, the API's template-path and conf checks, and the CLI's template discovery."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ledgerflow.api.dag_params import conf_problem
from ledgerflow.api.routes.dag_files import normalized_relpath
from ledgerflow.cli.client_commands import template_files_near
from ledgerflow.common.dagmodel import SerializedDag, SerializedTask
from ledgerflow.common.events import RunTaskAttempt
from ledgerflow.executor.attempt import bound_xcoms, final_report
from ledgerflow.executor.child import outcome_from

NOW = datetime(2026, 11, 24, tzinfo=UTC)


def _outcome(doc: object) -> object:
    return outcome_from(json.dumps(doc).encode() + b"\n", 0)


def test_outcome_lines_of_every_status() -> None:
    ok = _outcome(
        {
            "status": "success",
            "return_value": 1,
            "xcoms": {"k": [1]},
            "follow_task_ids": "b",
            "short_circuit": "direct",
            "rendered_fields": {"f": "x"},
        }
    )
    assert (ok.status, ok.xcoms, ok.follow_task_ids, ok.short_circuit) == (
        "success",
        {"k": [1]},
        ("b",),
        "direct",
    )
    skipped = _outcome({"status": "skipped", "reason": "why"})
    assert (skipped.status, skipped.reason) == ("skipped", "why")
    later = _outcome({"status": "rescheduled", "reschedule_date": "2030-01-01T00:00:00Z"})
    assert later.reschedule_date == datetime(2030, 1, 1, tzinfo=UTC)
    for bad in (
        {"status": "success", "xcoms": [1]},
        {"status": "success", "short_circuit": "some"},
        {"status": "rescheduled"},
        {"status": "rescheduled", "reschedule_date": "soon"},
        {"status": "nope"},
    ):
        assert _outcome(bad).error_type == "RunnerProtocolError", bad


def test_outcomes_map_onto_reports() -> None:
    item = RunTaskAttempt(
        dag_id="d", run_id="r", task_id="t", map_index=3, try_number=2, version_id="v", queue="q"
    )

    def report(doc: object) -> object:
        return final_report(_outcome(doc), item, end_date=NOW, executor_id="e")

    assert report({"status": "success", "return_value": 5}).type == "TaskAttemptSucceeded"
    assert report({"status": "skipped"}).type == "TaskAttemptSkipped"
    rescheduled = report({"status": "rescheduled", "reschedule_date": NOW.isoformat()})
    assert rescheduled.type == "TaskAttemptRescheduled" and rescheduled.map_index == 3
    failed = report({"status": "failed", "error": "E", "retryable": False})
    assert failed.type == "TaskAttemptFailed" and failed.try_number == 2


def test_xcoms_over_the_limit_fail_the_attempt() -> None:
    fits = _outcome({"status": "success", "return_value": "x" * 900})
    assert bound_xcoms(fits, 1024) is fits
    too_big = bound_xcoms(_outcome({"status": "success", "xcoms": {"a": "x" * 1100}}), 1024)
    assert too_big.status == "failed" and too_big.error_type == "XComTooLarge"
    assert "the limit is 1024 bytes" in (too_big.error or "")


@pytest.mark.parametrize(
    ("given", "clean"),
    [("a.sql", "a.sql"), ("./sql//q.sql", "sql/q.sql"), ("x/./y.sh", "x/y.sh")],
)
def test_template_paths_are_normalized(given: str, clean: str) -> None:
    assert normalized_relpath(given) == clean


@pytest.mark.parametrize("bad", ["", "/abs.sql", "../up.sql", "a/../../b", "C:/x", "a\\b", "."])
def test_template_paths_outside_the_folder_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        normalized_relpath(bad)


def test_conf_is_checked_against_param_schemas() -> None:
    dag = SerializedDag(
        dag_id="d",
        fileloc="d.py",
        params={"n": 1},
        param_schemas={"n": {"type": "integer"}, "who": {"type": "string"}},
        tasks=(SerializedTask(task_id="t", operator="EmptyOperator"),),
    )
    assert conf_problem(dag, {"who": "me"}) is None
    assert conf_problem(dag, {"who": "me", "n": 2, "other": 1}) is None
    assert conf_problem(dag, {}) == (
        "Invalid input for param who: No value passed and Param has no default value"
    )
    assert conf_problem(dag, {"who": 1}) == "Invalid input for param who: 1 is not of type 'string'"


def test_cli_finds_template_files_two_levels_down(tmp_path: Path) -> None:
    (tmp_path / "etl.py").write_text("dag")
    (tmp_path / "other_dag.py").write_text("another dag")
    (tmp_path / "q.sql").write_text("select 1")
    (tmp_path / "sql" / "deep" / "deeper").mkdir(parents=True)
    (tmp_path / "sql" / "load.sql").write_text("load")
    (tmp_path / "sql" / "deep" / "x.j2").write_text("{{ x }}")
    (tmp_path / "sql" / "deep" / "deeper" / "too_far.sql").write_text("no")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config.txt").write_text("hidden")
    (tmp_path / "data.bin").write_bytes(b"\xff")
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9")
    found = template_files_near(tmp_path / "etl.py")
    assert found == {"q.sql": "select 1", "sql/deep/x.j2": "{{ x }}", "sql/load.sql": "load"}


def test_cli_submit_sends_template_files_unless_told_not_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import httpx
    from ledgerflow.cli.main import main

    monkeypatch.chdir(tmp_path)
    for var in ("LEDGERFLOW_PASSWORD", "LEDGERFLOW_USERNAME", "LEDGERFLOW_API_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LEDGERFLOW_ADMIN_PASSWORD", "pw")
    (tmp_path / "dags" / "sql").mkdir(parents=True)
    (tmp_path / "dags" / "etl.py").write_text("dag")
    (tmp_path / "dags" / "sql" / "q.sql").write_text("select 1")
    bodies: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/auth/token":
            return httpx.Response(200, json={"access_token": "t", "token_type": "bearer"})
        bodies.append(json.loads(request.content))
        return httpx.Response(201, json={"dags": [{"dag_id": "etl", "version_id": "v"}]})

    transport = httpx.MockTransport(handler)
    assert main(["dags", "submit", "dags/etl.py"], transport=transport) == 0
    assert main(["dags", "submit", "--no-extra-files", "dags/etl.py"], transport=transport) == 0
    assert bodies == [
        {"filename": "etl.py", "content": "dag", "extra_files": {"sql/q.sql": "select 1"}},
        {"filename": "etl.py", "content": "dag"},
    ]
    assert "with template files sql/q.sql" in capsys.readouterr().err
