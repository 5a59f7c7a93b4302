"""Client commands against a fake API (httpx.MockTransport serving the contract's shapes)."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from ledgerflow.cli.main import main

PASSWORD = "pw"
TOKEN = "tok"


class FakeApi:
    """Routes by (method, path); records requests; checks the bearer token."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Callable[[httpx.Request], httpx.Response]] = {}
        self.requests: list[httpx.Request] = []
        self.password = PASSWORD

    def route(
        self,
        method: str,
        path: str,
        status: int = 200,
        body: Any = None,
        handler: Callable[[httpx.Request], httpx.Response] | None = None,
    ) -> None:
        self.routes[(method, path)] = handler or (lambda _req: httpx.Response(status, json=body))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if (request.method, request.url.path) == ("POST", "/auth/token"):
            creds = json.loads(request.content)
            if creds == {"username": "admin", "password": self.password}:
                return httpx.Response(200, json={"access_token": TOKEN, "token_type": "bearer"})
            return httpx.Response(401, json={"detail": "invalid credentials"})
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return httpx.Response(401, json={"detail": "Not authenticated"})
        handler = self.routes.get((request.method, request.url.path))
        if handler is None:
            return httpx.Response(404, json={"detail": f"no route {request.url.path}"})
        return handler(request)

    def bodies(self, method: str, path: str) -> list[Any]:
        return [
            json.loads(r.content) for r in self.requests if (r.method, r.url.path) == (method, path)
        ]


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeApi:
    monkeypatch.chdir(tmp_path)  # no .ledgerflow/standalone.env from elsewhere
    for var in ("LEDGERFLOW_PASSWORD", "LEDGERFLOW_USERNAME", "LEDGERFLOW_API_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LEDGERFLOW_ADMIN_PASSWORD", PASSWORD)
    return FakeApi()


def run(api: FakeApi, *argv: str) -> int:
    return main(list(argv), transport=httpx.MockTransport(api))


# --------------------------------------------------------------------- dags submit


def test_submit_prints_dag_ids(
    api: FakeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "etl.py").write_text("print('dag')\n")
    api.route("POST", "/api/v2/dagFiles", 201, {"dags": [{"dag_id": "etl", "version_id": "abc"}]})
    assert run(api, "dags", "submit", "etl.py") == 0
    assert capsys.readouterr().out == "etl.py: etl (version abc)\n"
    assert api.bodies("POST", "/api/v2/dagFiles") == [
        {"filename": "etl.py", "content": "print('dag')\n"}
    ]


def test_submit_reports_a_parse_error_as_file_line_message(
    api: FakeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "good.py").write_text("ok\n")
    (tmp_path / "bad.py").write_text("def (\n")

    def handler(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content)["filename"] == "bad.py":
            return httpx.Response(
                422,
                json={
                    "detail": {
                        "message": "invalid syntax",
                        "filename": "bad.py",
                        "lineno": 3,
                        "kind": "syntax",
                    }
                },
            )
        return httpx.Response(201, json={"dags": [{"dag_id": "good", "version_id": "v"}]})

    api.route("POST", "/api/v2/dagFiles", handler=handler)
    assert run(api, "dags", "submit", "bad.py", "good.py") == 1
    out, err = capsys.readouterr()
    assert err == "bad.py:3: invalid syntax [syntax]\n"
    assert "good.py: good" in out  # the other file is still submitted


def test_submit_a_missing_file(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(api, "dags", "submit", "nope.py") == 1
    assert capsys.readouterr().err.startswith("nope.py: cannot read")


# --------------------------------------------------------------------- dags list


DAGS = {
    "dags": [
        {
            "dag_id": "etl",
            "is_paused": False,
            "tags": ["a", "b"],
            "owners": ["ops"],
            "fileloc": "etl.py",
            "description": None,
            "latest_version_id": "v1",
        },
    ],
    "total_entries": 1,
}


def test_list_prints_a_table(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.route("GET", "/api/v2/dags", body=DAGS)
    assert run(api, "dags", "list") == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == ["dag_id", "paused", "owners", "tags", "version", "file"]
    assert row.split() == ["etl", "no", "ops", "a,b", "v1", "etl.py"]


def test_list_json(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.route("GET", "/api/v2/dags", body=DAGS)
    assert run(api, "dags", "list", "--json") == 0
    assert json.loads(capsys.readouterr().out) == DAGS["dags"]


def test_pause_and_unpause(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.route("PATCH", "/api/v2/dags/etl", body={"dag_id": "etl"})
    assert run(api, "dags", "pause", "etl") == 0
    assert run(api, "dags", "unpause", "etl") == 0
    assert api.bodies("PATCH", "/api/v2/dags/etl") == [{"is_paused": True}, {"is_paused": False}]
    assert capsys.readouterr().out == "etl: paused\netl: unpaused\n"


# --------------------------------------------------------------------- trigger


RUN_PATH = "/api/v2/dags/etl/dagRuns/manual__1"


def _progressing_run(api: FakeApi, final: str) -> None:
    """A run that is invisible once (projection lag), then running, then final."""
    api.route(
        "POST", "/api/v2/dags/etl/dagRuns", body={"dag_run_id": "manual__1", "state": "queued"}
    )
    states = iter([None, "running", "running", final])
    current: dict[str, Any] = {}

    def get_run(_req: httpx.Request) -> httpx.Response:
        current["state"] = next(states, final)
        if current["state"] is None:
            return httpx.Response(404, json={"detail": "not found"})
        return httpx.Response(200, json={"dag_run_id": "manual__1", "state": current["state"]})

    def get_tasks(_req: httpx.Request) -> httpx.Response:
        done = current["state"] == final
        return httpx.Response(
            200,
            json={
                "task_instances": [
                    {"task_id": "a", "map_index": -1, "state": "success", "try_number": 1},
                    {
                        "task_id": "b",
                        "map_index": -1,
                        "state": final if done else "running",
                        "try_number": 1,
                    },
                ],
                "total_entries": 2,
            },
        )

    api.route("GET", RUN_PATH, handler=get_run)
    api.route("GET", RUN_PATH + "/taskInstances", handler=get_tasks)


def test_trigger_prints_the_run_id(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.route(
        "POST", "/api/v2/dags/etl/dagRuns", body={"dag_run_id": "manual__1", "state": "queued"}
    )
    assert run(api, "dags", "trigger", "etl", "--conf", '{"x": 1}', "--run-id", "manual__1") == 0
    assert capsys.readouterr().out == "manual__1\n"
    (body,) = api.bodies("POST", "/api/v2/dags/etl/dagRuns")
    assert body["conf"] == {"x": 1} and body["dag_run_id"] == "manual__1" and body["logical_date"]


def test_trigger_wait_success(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    _progressing_run(api, "success")
    assert run(api, "dags", "trigger", "etl", "--wait", "--poll", "0.01") == 0
    out, err = capsys.readouterr()
    assert out == "manual__1\n"
    assert "run manual__1: running" in err and "run manual__1: success" in err
    assert "  b: running (try 1)" in err and "  b: success (try 1)" in err
    assert err.count("  a: success (try 1)") == 1  # printed only when it changes


def test_trigger_wait_failure_exits_1(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    _progressing_run(api, "failed")
    assert run(api, "dags", "trigger", "etl", "--wait", "--poll", "0.01") == 1
    assert "run manual__1: failed" in capsys.readouterr().err


def test_trigger_wait_timeout(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    _progressing_run(api, "running")
    assert (
        run(api, "dags", "trigger", "etl", "--wait", "--poll", "0.01", "--timeout", "0.05") == 124
    )
    assert (
        "ledgerflow: timed out after 0.05s waiting for run manual__1 (last state: running)"
        in capsys.readouterr().err
    )


def test_trigger_unknown_dag(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.route("POST", "/api/v2/dags/nope/dagRuns", 404, {"detail": "DAG nope not found"})
    assert run(api, "dags", "trigger", "nope") == 1
    assert capsys.readouterr().err == "ledgerflow: not found: DAG nope not found\n"


# --------------------------------------------------------------------- runs / logs


TASKS = {
    "task_instances": [
        {
            "task_id": "a",
            "map_index": -1,
            "state": "success",
            "try_number": 1,
            "start_date": "2025-01-01T00:00:00.000000+00:00",
            "end_date": "2025-01-01T00:00:01.000000+00:00",
            "duration": 1.0,
        },
        {
            "task_id": "flaky",
            "map_index": -1,
            "state": "success",
            "try_number": 2,
            "start_date": None,
            "end_date": None,
            "duration": None,
        },
    ],
    "total_entries": 2,
}


def test_runs_show(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.route(
        "GET",
        RUN_PATH,
        body={"dag_id": "etl", "dag_run_id": "manual__1", "state": "success", "conf": {"x": 1}},
    )
    api.route("GET", RUN_PATH + "/taskInstances", body=TASKS)
    assert run(api, "runs", "show", "etl", "manual__1") == 0
    out = capsys.readouterr().out
    assert "state:          success" in out
    assert 'conf:           {"x": 1}' in out
    rows = [line.split() for line in out.splitlines() if line.startswith(("a ", "flaky"))]
    assert rows[0][:3] == ["a", "success", "1"] and rows[0][-1] == "1.000s"
    assert rows[1][:3] == ["flaky", "success", "2"]


def test_runs_show_json(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.route("GET", RUN_PATH, body={"dag_run_id": "manual__1", "state": "success"})
    api.route("GET", RUN_PATH + "/taskInstances", body=TASKS)
    assert run(api, "runs", "show", "etl", "manual__1", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["dag_run"]["state"] == "success" and len(data["task_instances"]) == 2


def test_run_ids_are_quoted_in_paths(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    run_id = "manual__2025-01-01T00:00:00+00:00"
    api.route(
        "GET", "/api/v2/dags/etl/dagRuns/" + run_id, body={"dag_run_id": run_id, "state": "queued"}
    )
    api.route(
        "GET", "/api/v2/dags/etl/dagRuns/" + run_id + "/taskInstances", body={"task_instances": []}
    )
    assert run(api, "runs", "show", "etl", run_id) == 0
    assert "%2B00%3A00" in str(api.requests[-1].url)


def test_logs_default_to_the_latest_try(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.route("GET", RUN_PATH + "/taskInstances", body=TASKS)
    api.route(
        "GET",
        RUN_PATH + "/taskInstances/flaky/logs/2",
        body={
            "content": [
                {
                    "timestamp": "2025-01-01T00:00:00.000000+00:00",
                    "event": "second try",
                    "stream": "stdout",
                },
                {
                    "timestamp": "2025-01-01T00:00:01.000000+00:00",
                    "event": "ok",
                    "stream": "stderr",
                },
            ],
            "continuation_token": None,
        },
    )
    assert run(api, "tasks", "logs", "etl", "manual__1", "flaky") == 0
    assert capsys.readouterr().out == "second try\nok\n"


def test_logs_of_a_given_try(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.route(
        "GET",
        RUN_PATH + "/taskInstances/flaky/logs/1",
        body={
            "content": [
                {
                    "timestamp": "2025-01-01T00:00:00.000000+00:00",
                    "event": "boom",
                    "stream": "stderr",
                }
            ],
            "continuation_token": None,
        },
    )
    assert run(api, "tasks", "logs", "etl", "manual__1", "flaky", "--try", "1", "--timestamps") == 0
    assert capsys.readouterr().out == "2025-01-01T00:00:00.000000+00:00 boom\n"


def test_logs_of_an_unknown_task(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.route("GET", RUN_PATH + "/taskInstances", body=TASKS)
    assert run(api, "tasks", "logs", "etl", "manual__1", "nope") == 1
    assert capsys.readouterr().err == "ledgerflow: not found: task 'nope' in run 'manual__1'\n"


# --------------------------------------------------------------------- errors


def test_wrong_password_says_authentication_failed(
    api: FakeApi, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEDGERFLOW_PASSWORD", "wrong")  # wins over LEDGERFLOW_ADMIN_PASSWORD
    assert run(api, "dags", "list") == 1
    assert capsys.readouterr().err == "ledgerflow: authentication failed for user 'admin'\n"


def test_no_password_says_how_to_give_one(
    api: FakeApi, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("LEDGERFLOW_ADMIN_PASSWORD")
    assert run(api, "dags", "list") == 1
    err = capsys.readouterr().err
    assert err.startswith("ledgerflow: authentication failed") and "LEDGERFLOW_PASSWORD" in err


def test_password_from_the_standalone_env_file(
    api: FakeApi, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("LEDGERFLOW_ADMIN_PASSWORD")
    (tmp_path / ".ledgerflow").mkdir()
    (tmp_path / ".ledgerflow" / "standalone.env").write_text(
        f"LEDGERFLOW_ADMIN_PASSWORD={PASSWORD}\n"
    )
    api.route("GET", "/api/v2/dags", body=DAGS)
    assert run(api, "dags", "list") == 0


def test_server_error_is_one_line(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.route("GET", "/api/v2/dags", 503, {"detail": "projection is behind"})
    assert run(api, "dags", "list") == 1
    assert (
        capsys.readouterr().err
        == "ledgerflow: the API answered 503 to GET /api/v2/dags: projection is behind\n"
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_connection_refused_is_one_line(
    api: FakeApi, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("LEDGERFLOW_API_URL", url)
    assert main(["dags", "list"]) == 1  # real transport, nothing listening
    err = capsys.readouterr().err
    assert err == f"ledgerflow: cannot reach the API at {url}: connection refused\n"
