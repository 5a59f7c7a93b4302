"""``ledgerflow users ...`` against a fake API, and the CLI with an API key."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from ledgerflow.cli.main import main

from tests.unit.test_cli_client import PASSWORD, FakeApi, run

USER = {
    "username": "ada",
    "role": "op",
    "roles": [{"name": "Op"}],
    "email": "ada@example.com",
    "first_name": "Ada",
    "last_name": None,
    "active": True,
    "created_on": "2026-01-01T00:00:00.000000+00:00",
    "changed_on": "2026-01-01T00:00:00.000000+00:00",
}
KEY = {
    "key_id": "0123abcd",
    "name": "ci",
    "role": "user",
    "created_at": "2026-01-01T00:00:00.000000+00:00",
    "created_by": "admin",
    "expires_at": None,
    "revoked_at": None,
    "revoked_by": None,
}


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeApi:
    monkeypatch.chdir(tmp_path)
    for var in ("LEDGERFLOW_PASSWORD", "LEDGERFLOW_USERNAME", "LEDGERFLOW_API_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("LEDGERFLOW_API_KEY", raising=False)
    monkeypatch.setenv("LEDGERFLOW_ADMIN_PASSWORD", PASSWORD)
    return FakeApi()


def test_users_create_sends_the_account(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.route("POST", "/api/v2/users", 201, USER)
    code = run(
        api, "users", "create", "-u", "ada", "--role", "Op", "-p", "long-password",
        "--email", "ada@example.com", "--firstname", "Ada",
    )  # fmt: skip
    assert code == 0
    assert api.bodies("POST", "/api/v2/users") == [
        {
            "username": "ada",
            "password": "long-password",
            "role": "op",
            "email": "ada@example.com",
            "first_name": "Ada",
            "last_name": None,
        }
    ]
    assert capsys.readouterr().out == "User ada created with role op\n"


def test_users_create_without_a_password_or_terminal_fails(
    api: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(api, "users", "create", "-u", "ada", "-r", "viewer") != 0
    assert "no --password" in capsys.readouterr().err


def test_users_create_refuses_an_unknown_role(api: FakeApi) -> None:
    with pytest.raises(SystemExit):
        run(api, "users", "create", "-u", "ada", "-r", "root", "-p", "x" * 8)


def test_users_list_and_delete(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.route("GET", "/api/v2/users", 200, {"users": [USER], "total_entries": 1})
    assert run(api, "users", "list") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["username", "role", "email", "first_name", "last_name", "active"]
    assert out[1].split()[:3] == ["ada", "op", "ada@example.com"]
    api.route("DELETE", "/api/v2/users/ada", 204)
    assert run(api, "users", "delete", "-u", "ada") == 0
    assert capsys.readouterr().out == "User ada deleted\n"
    assert run(api, "users", "delete", "-u", "nobody") == 1
    assert "does not exist" in capsys.readouterr().err


def test_apikey_create_prints_the_key_once(
    api: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    api.route("POST", "/api/v2/apiKeys", 201, {**KEY, "key": "lfk_0123abcd_s3cr3t"})
    assert run(api, "users", "apikey", "create", "ci", "--role", "user") == 0
    captured = capsys.readouterr()
    assert captured.out == "lfk_0123abcd_s3cr3t\n"
    assert "not shown again" in captured.err
    assert api.bodies("POST", "/api/v2/apiKeys") == [{"name": "ci", "role": "user"}]


def test_apikey_list_and_revoke(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.route("GET", "/api/v2/apiKeys", 200, {"api_keys": [KEY], "total_entries": 1})
    assert run(api, "users", "apikey", "list", "--all") == 0
    assert "0123abcd" in capsys.readouterr().out
    [listing] = [r for r in api.requests if r.url.path == "/api/v2/apiKeys"]
    assert listing.url.params["include_revoked"] == "true"
    api.route("DELETE", "/api/v2/apiKeys/0123abcd", 204)
    assert run(api, "users", "apikey", "revoke", "0123abcd") == 0
    assert capsys.readouterr().out == "API key 0123abcd revoked\n"


def test_the_cli_can_use_an_api_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LEDGERFLOW_API_KEY", "lfk_0123abcd_s3cr3t")
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"dags": [], "total_entries": 0})

    assert main(["dags", "list", "--json"], transport=httpx.MockTransport(handler)) == 0
    assert [r.url.path for r in seen] == ["/api/v2/dags"]  # no login
    assert seen[0].headers["authorization"] == "Bearer lfk_0123abcd_s3cr3t"
