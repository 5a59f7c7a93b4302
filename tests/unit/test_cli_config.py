"""``ledgerflow variables`` / ``ledgerflow connections`` against a fake API, and the
connection URI parser (Airflow's format)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from ledgerflow.cli.config_commands import parse_conn_uri
from ledgerflow.cli.errors import CliError

from tests.unit.test_cli_client import PASSWORD, FakeApi, run

SECRET = "hunter2-pass"


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeApi:
    monkeypatch.chdir(tmp_path)
    for var in ("LEDGERFLOW_PASSWORD", "LEDGERFLOW_USERNAME", "LEDGERFLOW_API_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LEDGERFLOW_ADMIN_PASSWORD", PASSWORD)
    return FakeApi()


def _var(key: str, value: str, **more: Any) -> dict[str, Any]:
    return {
        "key": key,
        "value": value,
        "description": None,
        "is_encrypted": True,
        "team_name": None,
        "is_secret": False,
        **more,
    }


CONNECTION = {
    "connection_id": "warehouse",
    "conn_type": "postgres",
    "description": None,
    "host": "db.internal",
    "login": "etl",
    "schema": "analytics",
    "port": 5432,
    "password": "***",
    "extra": '{"sslmode": "require"}',
    "team_name": None,
}


# --------------------------------------------------------------------- variables


def test_variables_set_creates_then_replaces(api: FakeApi) -> None:
    api.route("POST", "/api/v2/variables", 409, {"detail": "exists"})
    api.route("PATCH", "/api/v2/variables/region", 200, _var("region", "eu"))
    assert run(api, "variables", "set", "region", "eu", "--description", "d") == 0
    sent = {"key": "region", "value": "eu", "is_secret": False, "description": "d"}
    assert api.bodies("POST", "/api/v2/variables") == [sent]
    assert api.bodies("PATCH", "/api/v2/variables/region") == [sent]


def test_variables_set_json_and_secret(api: FakeApi) -> None:
    api.route("POST", "/api/v2/variables", 201, _var("cfg", "{}"))
    assert run(api, "variables", "set", "cfg", '{"a": [1, 2]}', "--json", "--secret") == 0
    assert api.bodies("POST", "/api/v2/variables") == [
        {"key": "cfg", "value": {"a": [1, 2]}, "is_secret": True}
    ]


def test_variables_get_prints_the_value_or_default(
    api: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    api.route("GET", "/api/v2/variables/region", 200, _var("region", "eu"))
    assert run(api, "variables", "get", "region") == 0
    assert capsys.readouterr().out == "eu\n"
    assert run(api, "variables", "get", "nope", "--default", "fallback") == 0
    assert capsys.readouterr().out == "fallback\n"
    assert run(api, "variables", "get", "nope") == 1
    assert "variable 'nope' does not exist" in capsys.readouterr().err


def test_variables_list_table_and_json_pages_through(
    api: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    everything = [_var(f"k{i:03d}", str(i)) for i in range(150)]

    def page(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        limit = int(request.url.params["limit"])
        body = {"variables": everything[offset : offset + limit], "total_entries": 150}
        return httpx.Response(200, json=body)

    api.route("GET", "/api/v2/variables", handler=page)
    assert run(api, "variables", "list", "--output", "json") == 0
    assert [v["key"] for v in json.loads(capsys.readouterr().out)] == [v["key"] for v in everything]
    assert run(api, "variables", "list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["key", "value", "description", "secret"]
    assert len(lines) == 151


def test_variables_delete(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.route("DELETE", "/api/v2/variables/a/b", 204)
    assert run(api, "variables", "delete", "a/b") == 0
    assert api.requests[-1].url.raw_path == b"/api/v2/variables/a%2Fb"
    assert capsys.readouterr().out == "Variable a/b deleted\n"


def test_variables_import_uses_the_bulk_endpoint_and_skips_redacted(
    api: FakeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "vars.json"
    path.write_text(
        json.dumps(
            {
                "plain": "x",
                "doc": {"value": {"n": 1}, "description": "a doc"},
                "db_password": "***",
                "service": {"url": "u", "api_key": "***"},
            }
        )
    )
    api.route(
        "PATCH",
        "/api/v2/variables",
        200,
        {"create": {"success": ["plain", "doc"], "errors": []}, "update": None, "delete": None},
    )
    assert run(api, "variables", "import", str(path), "--action-on-existing-key", "skip") == 0
    [body] = api.bodies("PATCH", "/api/v2/variables")
    assert body == {
        "actions": [
            {
                "action": "create",
                "entities": [
                    {"key": "plain", "value": "x", "description": None},
                    {"key": "doc", "value": {"n": 1}, "description": "a doc"},
                ],
                "action_on_existence": "skip",
            }
        ]
    }
    out = capsys.readouterr()
    assert out.out == "2 of 2 variables imported\n"
    assert "db_password, service" in out.err


def test_variables_export_in_airflows_format(
    api: FakeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api.route(
        "GET",
        "/api/v2/variables",
        200,
        {
            "variables": [
                _var("plain", "x"),
                _var("doc", '{"n": 1}', description="a doc"),
                _var("db_password", "***"),
            ],
            "total_entries": 3,
        },
    )
    out = tmp_path / "out.json"
    assert run(api, "variables", "export", str(out)) == 0
    assert json.loads(out.read_text()) == {
        "plain": "x",
        "doc": {"value": {"n": 1}, "description": "a doc"},
        "db_password": "***",
    }
    assert "db_password" in capsys.readouterr().err


# --------------------------------------------------------------------- connections


def test_connections_add_from_a_uri(api: FakeApi) -> None:
    api.route("POST", "/api/v2/connections", 201, CONNECTION)
    uri = f"postgresql://etl:{SECRET}@db.internal:5432/analytics?sslmode=require"
    assert run(api, "connections", "add", "warehouse", "--conn-uri", uri) == 0
    assert api.bodies("POST", "/api/v2/connections") == [
        {
            "connection_id": "warehouse",
            "conn_type": "postgres",
            "host": "db.internal",
            "schema": "analytics",
            "login": "etl",
            "password": SECRET,
            "port": 5432,
            "extra": '{"sslmode": "require"}',
        }
    ]


def test_connections_add_from_options(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.route("POST", "/api/v2/connections", 201, CONNECTION)
    argv = ["--conn-type", "http", "--conn-host", "example.com", "--conn-port", "443"]
    assert run(api, "connections", "add", "web", *argv, "--conn-password", SECRET) == 0
    [body] = api.bodies("POST", "/api/v2/connections")
    assert body == {
        "connection_id": "web",
        "conn_type": "http",
        "host": "example.com",
        "port": 443,
        "password": SECRET,
    }
    assert SECRET not in capsys.readouterr().out


def test_connections_add_refuses_mixed_sources(
    api: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(api, "connections", "add", "c", "--conn-uri", "http://h", "--conn-host", "x") == 1
    assert "not several" in capsys.readouterr().err
    assert run(api, "connections", "add", "c", "--conn-host", "x") == 1
    assert "needs a type" in capsys.readouterr().err


@pytest.mark.parametrize("output", ["table", "json"])
def test_connections_get_and_list_never_print_a_password(
    api: FakeApi, capsys: pytest.CaptureFixture[str], output: str
) -> None:
    # Even if an API answered with a password, the CLI would print *** for it.
    leaky = {**CONNECTION, "password": SECRET}
    api.route("GET", "/api/v2/connections/warehouse", 200, leaky)
    api.route("GET", "/api/v2/connections", 200, {"connections": [leaky], "total_entries": 1})
    assert run(api, "connections", "get", "warehouse", "-o", output) == 0
    assert run(api, "connections", "list", "--output", output) == 0
    out = capsys.readouterr().out
    assert SECRET not in out
    assert "***" in out and "db.internal" in out


def test_connections_delete_missing(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.route("DELETE", "/api/v2/connections/gone", 404, {"detail": "not found"})
    assert run(api, "connections", "delete", "gone") == 1
    assert "Did not find a connection" in capsys.readouterr().err


# --------------------------------------------------------------------- URI parsing


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (
            "mysql://user:p%40ss%2Fword@Host.Example:3306/my%20db",
            {
                "conn_type": "mysql",
                "host": "Host.Example",
                "schema": "my db",
                "login": "user",
                "password": "p@ss/word",
                "port": 3306,
            },
        ),
        (
            "google-cloud-platform://?__extra__=%7B%22project%22%3A+%22p%22%7D",
            {
                "conn_type": "google_cloud_platform",
                "host": None,
                "schema": None,
                "login": None,
                "password": None,
                "port": None,
                "extra": '{"project": "p"}',
            },
        ),
        (
            "http://https://example.com/api?timeout=3",
            {
                "conn_type": "http",
                "host": "https://example.com",
                "schema": "api",
                "login": None,
                "password": None,
                "port": None,
                "extra": '{"timeout": "3"}',
            },
        ),
    ],
)
def test_parse_conn_uri_like_airflow(uri: str, expected: dict[str, Any]) -> None:
    assert parse_conn_uri(uri) == expected


@pytest.mark.parametrize("uri", ["no-scheme", "a://b://c://d", "http://user@x://h"])
def test_parse_conn_uri_rejects_garbage(uri: str) -> None:
    with pytest.raises(CliError):
        parse_conn_uri(uri)


# --------------------------------------------------------------------- standalone


def test_standalone_generates_a_fernet_key_once(tmp_path: Path) -> None:
    from ledgerflow.cli.standalone import load_or_create_credentials
    from ledgerflow.common.secrets import Cipher

    env_file = tmp_path / "standalone.env"
    env_file.write_text("LEDGERFLOW_ADMIN_PASSWORD=old\nLEDGERFLOW_SECRET_KEY=s\n")  # older file
    first = load_or_create_credentials(tmp_path, {})
    key = first["LEDGERFLOW_FERNET_KEY"]
    assert Cipher(key).configured
    assert first["LEDGERFLOW_ADMIN_PASSWORD"] == "old"
    assert load_or_create_credentials(tmp_path, {})["LEDGERFLOW_FERNET_KEY"] == key
    mine = load_or_create_credentials(tmp_path, {"LEDGERFLOW_FERNET_KEY": "k1,k2"})
    assert mine["LEDGERFLOW_FERNET_KEY"] == "k1,k2"
