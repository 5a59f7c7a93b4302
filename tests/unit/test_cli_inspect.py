"""The CLI's inspection commands, output formats and API configuration, against a fake
API (httpx.MockTransport serving the contract's shapes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from ledgerflow.cli import cli_config, events_tail, output
from ledgerflow.cli.errors import CliError
from ledgerflow.cli.main import main

from tests.unit.test_cli_client import TOKEN, FakeApi, run
from tests.unit.test_cli_client import api as api  # noqa: F401  (fixture)

RUN = {
    "dag_id": "etl",
    "dag_run_id": "r1",
    "state": "success",
    "run_type": "manual",
    "logical_date": "2026-01-01T00:00:00+00:00",
    "start_date": None,
    "end_date": None,
}


@pytest.fixture(autouse=True)
def no_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    monkeypatch.setenv("LEDGERFLOW_CONFIG", str(path))
    for var in ("LEDGERFLOW_TOKEN", "LEDGERFLOW_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    return path


# --------------------------------------------------------------------- output formats
def test_yaml_emitter_writes_block_yaml_with_json_scalars() -> None:
    value = {"a": 1, "b": [1, {"c": None, "d": "x: y"}], "e": {}, "f": [], "g": True}
    assert output.to_yaml(value) == (
        '"a": 1\n"b":\n  - 1\n  - "c": null\n    "d": "x: y"\n"e": {}\n"f": []\n"g": true\n'
    )


def test_yaml_round_trips_through_a_yaml_parser() -> None:
    yaml = pytest.importorskip("yaml")
    value = {"runs": [{"id": "r:1", "conf": {"k": [1, 2.5, None]}, "ok": False}], "n": 0}
    assert yaml.safe_load(output.to_yaml(value)) == value


def test_table_json_and_yaml_for_list_runs(
    api: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    api.route("GET", "/api/v2/dags/etl/dagRuns", body={"dag_runs": [RUN], "total_entries": 1})
    assert run(api, "dags", "list-runs", "etl", "--state", "success") == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split() == [
        "dag_id", "dag_run_id", "state", "run_type", "logical_date", "start", "end",
    ]  # fmt: skip
    assert "r1" in table and "success" in table
    query = api.requests[-1].url.params
    assert query.get_list("state") == ["success"] and query["order_by"] == "-run_after"

    assert run(api, "--output", "json", "dags", "list-runs", "etl") == 0
    assert json.loads(capsys.readouterr().out) == [RUN]
    assert run(api, "-o", "yaml", "runs", "list", "etl") == 0
    assert '"dag_run_id": "r1"' in capsys.readouterr().out


# --------------------------------------------------------------------- dags
def test_dags_show(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.route("GET", "/api/v2/dags/etl/details", body={"dag_id": "etl", "is_paused": False})
    tasks = [{"task_id": "a", "operator_name": "BashOperator", "downstream_task_ids": ["b"]}]
    api.route("GET", "/api/v2/dags/etl/tasks", body={"tasks": tasks, "total_entries": 1})
    assert run(api, "dags", "show", "etl") == 0
    out = capsys.readouterr().out
    assert "is_paused:" in out and "BashOperator" in out
    assert run(api, "-o", "json", "dags", "show", "etl") == 0
    assert json.loads(capsys.readouterr().out)["tasks"] == tasks


def test_dags_delete_needs_confirmation(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.route("DELETE", "/api/v2/dags/etl", handler=lambda _r: httpx.Response(204))
    assert run(api, "dags", "delete", "etl") == 1  # stdin is not a terminal: refused
    assert "--yes" in capsys.readouterr().err
    assert not [r for r in api.requests if r.method == "DELETE"]
    assert run(api, "dags", "delete", "etl", "--yes") == 0
    assert [r.url.path for r in api.requests if r.method == "DELETE"] == ["/api/v2/dags/etl"]


# --------------------------------------------------------------------- tasks, runs
def test_tasks_list_and_state(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.route("GET", "/api/v2/dags/etl/tasks", body={"tasks": [{"task_id": "a"}]})
    assert run(api, "tasks", "list", "etl") == 0
    assert "a" in capsys.readouterr().out.splitlines()[1]
    base = "/api/v2/dags/etl/dagRuns/r1/taskInstances"
    api.route("GET", f"{base}/a", body={"task_id": "a", "state": "failed"})
    api.route("GET", f"{base}/m/2", body={"task_id": "m", "map_index": 2, "state": None})
    assert run(api, "tasks", "state", "etl", "r1", "a") == 0
    assert capsys.readouterr().out == "failed\n"
    assert run(api, "tasks", "state", "etl", "r1", "m", "--map-index", "2") == 0
    assert capsys.readouterr().out == "none\n"


def test_tasks_clear_previews_then_clears(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    ti = {"dag_run_id": "r1", "task_id": "a", "map_index": -1, "state": "failed", "try_number": 1}

    def clear(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        state = "failed" if body["dry_run"] else None
        return httpx.Response(
            200, json={"task_instances": [{**ti, "state": state}], "total_entries": 1}
        )

    api.route("POST", "/api/v2/dags/etl/clearTaskInstances", handler=clear)
    assert run(api, "tasks", "clear", "etl", "--run-id", "r1", "-t", "a", "--dry-run") == 0
    assert [b["dry_run"] for b in api.bodies("POST", "/api/v2/dags/etl/clearTaskInstances")] == [
        True
    ]
    capsys.readouterr()
    assert run(api, "tasks", "clear", "etl", "--run-id", "r1", "-t", "a", "-f", "-d", "-y") == 0
    bodies = api.bodies("POST", "/api/v2/dags/etl/clearTaskInstances")
    assert bodies[-1] == {
        "dry_run": False,
        "only_failed": True,
        "only_running": False,
        "include_upstream": False,
        "include_downstream": True,
        "dag_run_id": "r1",
        "task_ids": ["a"],
    }


def test_runs_history(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    events = [
        {"sequence": 1, "time": "t1", "type": "TriggerDagRun", "user": "admin", "source": "api"},
        {"sequence": 2, "time": "t2", "type": "DagRunQueued", "user": None, "source": "sch"},
    ]
    api.route(
        "GET",
        "/api/v2/dags/etl/dagRuns/r1/events",
        body={"events": events, "total_entries": 2},
    )
    assert run(api, "runs", "history", "etl", "r1") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["seq", "time", "type", "user", "source"]
    assert lines[1].split()[2] == "TriggerDagRun" and lines[2].split()[3] == "-"


def test_version_asks_the_public_endpoint(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[httpx.Request] = []

    def public(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"version": "1.2.3", "git_version": None})

    # /api/v2/version is public: asked without logging in.
    assert main(["-o", "json", "version"], transport=httpx.MockTransport(public)) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["api"] == "1.2.3" and "cli" in body
    assert [r.url.path for r in seen] == ["/api/v2/version"]


# --------------------------------------------------------------------- configuration
def test_config_file_flags_and_environment(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('api_url = "http://file:1"\napi_key = "lfk_a_b"\n')
    env = {"LEDGERFLOW_CONFIG": str(path)}
    got = cli_config.resolve(api_url_flag=None, token_flag=None, environ=env)
    assert (got.api_url, got.token) == ("http://file:1", "lfk_a_b")
    env_first = {**env, "LEDGERFLOW_API_URL": "http://env:2", "LEDGERFLOW_TOKEN": "t"}
    got = cli_config.resolve(api_url_flag=None, token_flag=None, environ=env_first)
    assert (got.api_url, got.token) == ("http://env:2", "t")
    got = cli_config.resolve(api_url_flag="http://flag:3", token_flag="f", environ=env_first)
    assert (got.api_url, got.token) == ("http://flag:3", "f")
    assert cli_config.config_path({"HOME": "/h"}) == Path("/h/.config/ledgerflow/config.toml")
    path.write_text("oops = 1\n")
    with pytest.raises(CliError, match="unknown settings"):
        cli_config.resolve(api_url_flag=None, token_flag=None, environ=env)


def test_token_from_the_config_file_skips_the_login(
    api: FakeApi, no_config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    no_config_file.write_text(f'api_url = "http://configured"\ntoken = "{TOKEN}"\n')
    api.route("GET", "/api/v2/dags", body={"dags": [], "total_entries": 0})
    assert run(api, "-o", "json", "dags", "list") == 0
    assert json.loads(capsys.readouterr().out) == []
    assert [r.url.path for r in api.requests] == ["/api/v2/dags"]  # no POST /auth/token
    assert api.requests[0].url.host == "configured"


# --------------------------------------------------------------------- events tail
class _Record:
    def __init__(self, value: bytes, key: bytes | None = b"etl") -> None:
        self.value, self.key = value, key
        self.topic, self.partition, self.offset, self.timestamp = "p.runs", 0, 7, 0


def test_events_tail_renders_envelopes() -> None:
    envelope: dict[str, Any] = {"id": "e1", "time": "t", "data": {"type": "DagRunQueued"}}
    record = _Record(json.dumps(envelope).encode())
    assert json.loads(events_tail.render(record, "json")) == envelope
    assert events_tail.render(record, "table") == "t  p.runs[0]@7  DagRunQueued  etl\n"
    assert events_tail.render(record, "yaml").startswith('---\n"id": "e1"\n')
    assert json.loads(events_tail.render(_Record(b"\xff"), "json")) == {"raw": "\ufffd"}


def test_events_tail_topic_names(monkeypatch: pytest.MonkeyPatch) -> None:
    from ledgerflow.common.settings import Settings

    settings = Settings(topic_prefix="p")
    assert events_tail.resolve_topics(settings, ["runs", "custom.topic"]) == [
        "p.runs",
        "custom.topic",
    ]
    assert events_tail.resolve_topics(settings, None) == list(settings.topics.event_topics)
