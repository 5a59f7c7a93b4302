"""Access control over the whole API, against real Kafka and Postgres (issue 5).

The permission matrix walks every path and method of ``/openapi.json`` with no
credentials, with a user of each role and with an API key, and checks each answer
against :data:`REQUIRED_ROLE` below, the one table of who may call what. A route that is
not in the table (or an entry whose route is gone) fails the test: add new routes to it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from ledgerflow.api.app import create_app
from ledgerflow.api.auth import ROLES, Authenticator, role_allows
from ledgerflow.api.projector import Projector
from ledgerflow.common.kafka_io import ensure_topics
from ledgerflow.common.settings import Settings
from ledgerflow.common.task_tokens import mint_task_token

pytestmark = pytest.mark.integration

ADMIN_PASSWORD = "s3cret-admin"
SECRET_KEY = "test-signing-key-0123456789abcdef"
PUBLIC = None

# Routes whose allowed responses never end (server-sent events): only the anonymous
# refusal is walked here.
STREAMS = {"/api/v2/events/stream"}

# (method, path) -> the least role that may call it; PUBLIC: no credentials needed.
REQUIRED_ROLE: dict[tuple[str, str], str | None] = {
    ("POST", "/auth/token"): PUBLIC,
    ("GET", "/health"): PUBLIC,
    # backfills (issue 6): user writes (the dry run too, as Airflow's POST access)
    ("GET", "/api/v2/backfills"): "viewer",
    ("POST", "/api/v2/backfills"): "user",
    ("POST", "/api/v2/backfills/dry_run"): "user",
    ("GET", "/api/v2/backfills/{backfill_id}"): "viewer",
    ("PUT", "/api/v2/backfills/{backfill_id}/pause"): "user",
    ("PUT", "/api/v2/backfills/{backfill_id}/unpause"): "user",
    ("PUT", "/api/v2/backfills/{backfill_id}/cancel"): "user",
    # pools: op writes
    ("GET", "/api/v2/pools"): "viewer",
    ("POST", "/api/v2/pools"): "op",
    ("GET", "/api/v2/pools/{pool_name}"): "viewer",
    ("PATCH", "/api/v2/pools/{pool_name}"): "op",
    ("DELETE", "/api/v2/pools/{pool_name}"): "op",
    # assets (ADR 0013): viewers read, users write
    ("GET", "/api/v2/assets"): "viewer",
    ("GET", "/api/v2/assets/events"): "viewer",
    ("POST", "/api/v2/assets/events"): "user",
    ("GET", "/api/v2/assets/aliases"): "viewer",
    ("GET", "/api/v2/assets/aliases/{asset_alias_id}"): "viewer",
    ("GET", "/api/v2/assets/{asset_id}"): "viewer",
    ("POST", "/api/v2/assets/{asset_id}/materialize"): "user",
    # history and the live event stream
    ("GET", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/events"): "viewer",
    ("GET", "/api/v2/events/stream"): "viewer",
    # DAG files and DAGs
    ("POST", "/api/v2/dagFiles"): "user",
    ("GET", "/api/v2/dags"): "viewer",
    ("GET", "/api/v2/dags/{dag_id}"): "viewer",
    ("PATCH", "/api/v2/dags/{dag_id}"): "user",
    ("GET", "/api/v2/dags/{dag_id}/details"): "viewer",
    ("GET", "/api/v2/dags/{dag_id}/tasks"): "viewer",
    ("GET", "/api/v2/dags/{dag_id}/tasks/{task_id}"): "viewer",
    # runs, task instances, XComs, logs
    ("POST", "/api/v2/dags/{dag_id}/dagRuns"): "user",
    ("GET", "/api/v2/dags/{dag_id}/dagRuns"): "viewer",
    ("GET", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}"): "viewer",
    ("GET", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances"): "viewer",
    ("GET", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}"): "viewer",
    (
        "GET",
        "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}",
    ): "viewer",
    (
        "GET",
        "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/listMapped",
    ): "viewer",
    (
        "GET",
        "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/logs/{try_number}",
    ): "viewer",
    (
        "GET",
        "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries",
    ): "viewer",
    (
        "GET",
        "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries/{xcom_key}",
    ): "viewer",
    # clear and mark (dry runs preview a change, so they need the role that makes it)
    ("POST", "/api/v2/dags/{dag_id}/clearTaskInstances"): "user",
    ("POST", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/clear"): "user",
    ("PATCH", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}"): "user",
    ("PATCH", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}"): "user",
    ("PATCH", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/dry_run"): "user",
    (
        "PATCH",
        "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}",
    ): "user",
    (
        "PATCH",
        "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}/dry_run",
    ): "user",
    # variables and connections: op writes
    ("GET", "/api/v2/variables"): "viewer",
    ("POST", "/api/v2/variables"): "op",
    ("PATCH", "/api/v2/variables"): "op",
    ("GET", "/api/v2/variables/{variable_key}"): "viewer",
    ("PATCH", "/api/v2/variables/{variable_key}"): "op",
    ("DELETE", "/api/v2/variables/{variable_key}"): "op",
    ("GET", "/api/v2/connections"): "viewer",
    ("POST", "/api/v2/connections"): "op",
    ("PATCH", "/api/v2/connections"): "op",
    ("POST", "/api/v2/connections/test"): "op",
    ("GET", "/api/v2/connections/{connection_id}"): "viewer",
    ("PATCH", "/api/v2/connections/{connection_id}"): "op",
    ("DELETE", "/api/v2/connections/{connection_id}"): "op",
    # users and API keys: admin only
    ("GET", "/api/v2/users"): "admin",
    ("POST", "/api/v2/users"): "admin",
    ("GET", "/api/v2/users/{username}"): "admin",
    ("PATCH", "/api/v2/users/{username}"): "admin",
    ("DELETE", "/api/v2/users/{username}"): "admin",
    ("GET", "/api/v2/apiKeys"): "admin",
    ("POST", "/api/v2/apiKeys"): "admin",
    ("GET", "/api/v2/apiKeys/{key_id}"): "admin",
    ("DELETE", "/api/v2/apiKeys/{key_id}"): "admin",
    # audit
    ("GET", "/api/v2/eventLogs"): "viewer",
    ("GET", "/api/v2/eventLogs/{event_log_id}"): "viewer",
    # DAG versions and sources, import errors, version and monitor (public)
    ("GET", "/api/v2/dags/{dag_id}/dagVersions"): "viewer",
    ("GET", "/api/v2/dags/{dag_id}/dagVersions/{version_number}"): "viewer",
    ("GET", "/api/v2/dagSources/{dag_id}"): "viewer",
    ("GET", "/api/v2/importErrors"): "viewer",
    ("GET", "/api/v2/importErrors/{import_error_id}"): "viewer",
    ("GET", "/api/v2/version"): PUBLIC,
    ("GET", "/api/v2/monitor/health"): PUBLIC,
    # bulk pause (user), run lists (a POST that reads), tries, deletion (admin)
    ("PATCH", "/api/v2/dags"): "user",
    ("POST", "/api/v2/dags/~/dagRuns/list"): "viewer",
    ("GET", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/tries"): "viewer",
    (
        "GET",
        "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/tries/{task_try_number}",
    ): "viewer",
    (
        "GET",
        "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}/tries",
    ): "viewer",
    (
        "GET",
        "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}/tries/{task_try_number}",
    ): "viewer",
    ("DELETE", "/api/v2/dags/{dag_id}"): "admin",
    ("DELETE", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}"): "admin",
}

HELLO = """\
from ledgerflow.sdk import DAG, task

with DAG("audited"):
    @task
    def hi():
        return 1

    hi()
"""


@pytest.fixture
async def settings(make_settings: Callable[..., Settings]) -> Settings:
    s = make_settings(
        admin_password=ADMIN_PASSWORD, secret_key=SECRET_KEY, partitions=1, work_partitions=1
    )
    await ensure_topics(s)
    await project(s)  # creates the projection's tables
    return s


async def project(settings: Settings) -> None:
    async with Projector(settings) as projector:
        await projector.catch_up(within_s=30)


async def _anon(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield client


@pytest.fixture
async def anon(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _anon(settings):
        yield client


async def login(client: httpx.AsyncClient, username: str, password: str) -> dict[str, str]:
    response = await client.post("/auth/token", json={"username": username, "password": password})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture
async def admin(anon: httpx.AsyncClient) -> dict[str, str]:
    return await login(anon, "admin", ADMIN_PASSWORD)


async def create_user(
    client: httpx.AsyncClient, admin: dict[str, str], username: str, role: str
) -> None:
    response = await client.post(
        "/api/v2/users",
        headers=admin,
        json={"username": username, "password": f"pw-{username}-123", "role": role},
    )
    assert response.status_code == 201, response.text


async def create_api_key(
    client: httpx.AsyncClient, admin: dict[str, str], name: str, role: str
) -> dict[str, Any]:
    response = await client.post(
        "/api/v2/apiKeys", headers=admin, json={"name": name, "role": role}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    assert body["key"].startswith(f"lfk_{body['key_id']}_")
    return body


@pytest.fixture
async def principals(
    settings: Settings, anon: httpx.AsyncClient, admin: dict[str, str]
) -> dict[str, tuple[str, dict[str, str]]]:
    """name -> (role, headers): one user per role, the bootstrap admin, an API key."""
    for role in ROLES:
        await create_user(anon, admin, f"{role}-person", role)
    key = await create_api_key(anon, admin, "ci", "user")
    await project(settings)
    found: dict[str, tuple[str, dict[str, str]]] = {"bootstrap": ("admin", admin)}
    for role in ROLES:
        found[f"{role}-person"] = (
            role,
            await login(anon, f"{role}-person", f"pw-{role}-person-123"),
        )
    found["apikey:ci"] = ("user", {"Authorization": f"Bearer {key['key']}"})
    return found


def concrete(path: str, operation: dict[str, Any]) -> str:
    """The path with made-up values for its parameters (integers where it wants one)."""
    for param in operation.get("parameters", []):
        if param.get("in") != "path":
            continue
        schema = param.get("schema", {})
        value = "1" if schema.get("type") == "integer" else "nope"
        path = path.replace("{" + param["name"] + "}", value)
    return path


def is_role_denial(response: httpx.Response) -> bool:
    return response.status_code == 403 and str(response.json().get("detail", "")).startswith(
        "Forbidden: this needs the"
    )


async def test_every_route_checks_the_role(
    anon: httpx.AsyncClient, principals: dict[str, tuple[str, dict[str, str]]]
) -> None:
    spec = (await anon.get("/openapi.json")).json()
    routes = {
        (method.upper(), path): operation
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
    }
    missing = sorted(set(routes) - set(REQUIRED_ROLE))
    assert not missing, f"routes without an entry in REQUIRED_ROLE: {missing}"
    stale = sorted(set(REQUIRED_ROLE) - set(routes))
    assert not stale, f"REQUIRED_ROLE names routes the API does not have: {stale}"

    problems: list[str] = []
    for (method, path), operation in sorted(routes.items()):
        need = REQUIRED_ROLE[(method, path)]
        if method == "POST" and path == "/auth/token":
            continue  # logins are tested below (and would count as failed logins here)
        url = concrete(path, operation)
        body = {} if "requestBody" in operation else None
        response = await anon.request(method, url, json=body)
        if need is PUBLIC:
            if response.status_code in (401, 403):
                problems.append(f"{method} {path} anonymous: {response.status_code}")
            continue
        if response.status_code != 401:
            problems.append(f"{method} {path} anonymous: {response.status_code}, not 401")
        if path in STREAMS:
            continue  # an allowed call streams forever; its role is checked in its own test
        for name, (role, headers) in principals.items():
            response = await anon.request(method, url, json=body, headers=headers)
            allowed = role_allows(role, need)
            if response.status_code >= 500:
                problems.append(f"{method} {path} as {name}: {response.status_code}")
            elif allowed and (response.status_code == 401 or is_role_denial(response)):
                problems.append(f"{method} {path} as {name} ({role}): {response.status_code}")
            elif not allowed and not is_role_denial(response):
                problems.append(
                    f"{method} {path} as {name} ({role}): {response.status_code}, not 403"
                )
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------- tokens and keys
async def test_expired_and_forged_tokens_are_refused(
    settings: Settings, anon: httpx.AsyncClient
) -> None:
    auth = Authenticator.from_settings(settings)
    expired = auth.issue("admin", "admin", now=time.time() - settings.token_ttl_seconds - 5)
    response = await anon.get("/api/v2/dags", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid token: Signature has expired"
    assert response.headers["WWW-Authenticate"] == "Bearer"

    forged = Authenticator("admin", "x", "another-signing-key-0123456789abcdef", 3600).issue(
        "admin", "admin"
    )
    response = await anon.get("/api/v2/dags", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401

    fresh = auth.issue("admin", "admin")
    assert (
        await anon.get("/api/v2/dags", headers={"Authorization": f"Bearer {fresh}"})
    ).status_code == 200
    # A token for a user the projection does not have is refused.
    ghost = auth.issue("ghost", "admin")
    response = await anon.get("/api/v2/dags", headers={"Authorization": f"Bearer {ghost}"})
    assert response.status_code == 401


async def test_a_task_token_is_a_read_only_viewer(
    settings: Settings, anon: httpx.AsyncClient
) -> None:
    """What an executor gives each attempt (ExternalTaskSensor): reads, never writes."""
    secret = settings.secret_key.get_secret_value() if settings.secret_key else ""

    def token(now: float | None = None) -> dict[str, str]:
        minted = mint_task_token(
            secret,
            dag_id="consumer",
            run_id="manual__1",
            task_id="wait",
            map_index=-1,
            try_number=1,
            ttl_seconds=60,
            now=now,
        )
        return {"Authorization": f"Bearer {minted}"}

    task = token()
    assert (await anon.get("/api/v2/dags", headers=task)).status_code == 200
    assert (await anon.get("/api/v2/dags/nope/dagRuns", headers=task)).status_code == 404
    assert (await anon.get("/api/v2/users", headers=task)).status_code == 403
    for method, path, body in (
        ("POST", "/api/v2/dags/nope/dagRuns", {}),
        ("POST", "/api/v2/variables", {"key": "k", "value": "v"}),
        ("PATCH", "/api/v2/dags/nope", {"is_paused": True}),
        ("POST", "/api/v2/dagFiles", {"filename": "x.py", "content": HELLO}),
    ):
        response = await anon.request(method, path, json=body, headers=task)
        assert response.status_code == 403, (method, path, response.text)
        assert "task:consumer/manual__1/wait/-1/1 is a task token" in response.json()["detail"]
    expired = await anon.get("/api/v2/dags", headers=token(now=time.time() - 3600))
    assert expired.status_code == 401
    assert expired.json()["detail"] == "Invalid token: Signature has expired"
    forged = mint_task_token(
        "another-signing-key-0123456789abcdef",
        dag_id="d",
        run_id="r",
        task_id="t",
        map_index=-1,
        try_number=1,
        ttl_seconds=60,
    )
    response = await anon.get("/api/v2/dags", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


async def test_api_keys_work_until_revoked(
    settings: Settings, anon: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    key = await create_api_key(anon, admin, "deployer", "op")
    duplicate = await anon.post(
        "/api/v2/apiKeys", headers=admin, json={"name": "deployer", "role": "op"}
    )
    await project(settings)
    assert duplicate.status_code == 201  # the first was not projected yet: names are advisory
    bearer = {"Authorization": f"Bearer {key['key']}"}
    header = {"X-API-Key": key["key"]}
    assert (await anon.get("/api/v2/dags", headers=bearer)).status_code == 200
    assert (await anon.get("/api/v2/dags", headers=header)).status_code == 200
    created = await anon.post(
        "/api/v2/variables", headers=header, json={"key": "by_key", "value": "v"}
    )
    assert created.status_code == 201, created.text
    assert (await anon.get("/api/v2/users", headers=header)).status_code == 403
    wrong = key["key"][:-3] + "xyz"
    assert (await anon.get("/api/v2/dags", headers={"X-API-Key": wrong})).status_code == 401

    listed = (await anon.get("/api/v2/apiKeys", headers=admin)).json()
    assert key["key_id"] in {k["key_id"] for k in listed["api_keys"]}
    assert all("key" not in k and "secret_hash" not in k for k in listed["api_keys"])

    revoked = await anon.delete(f"/api/v2/apiKeys/{key['key_id']}", headers=admin)
    assert revoked.status_code == 204
    # This process forgets the key at once ...
    response = await anon.get("/api/v2/dags", headers=bearer)
    assert response.status_code == 401
    assert response.json()["detail"].startswith("Invalid API key")
    # ... and every other process once the projection has the revocation.
    await project(settings)
    async for other in _anon(settings):
        assert (await other.get("/api/v2/dags", headers=bearer)).status_code == 401
    shown = await anon.get(f"/api/v2/apiKeys/{key['key_id']}", headers=admin)
    assert shown.json()["revoked_at"] is not None and shown.json()["revoked_by"] == "admin"
    assert (await anon.get("/api/v2/apiKeys", headers=admin)).json()["total_entries"] == 1
    every = await anon.get("/api/v2/apiKeys", headers=admin, params={"include_revoked": True})
    assert every.json()["total_entries"] == 2

    expired = await anon.post(
        "/api/v2/apiKeys",
        headers=admin,
        json={"name": "old", "role": "viewer", "expires_at": "2000-01-01T00:00:00Z"},
    )
    await project(settings)
    response = await anon.get("/api/v2/dags", headers={"X-API-Key": expired.json()["key"]})
    assert response.status_code == 401 and "expired" in response.json()["detail"]


async def test_user_lifecycle_and_role_changes(
    settings: Settings, anon: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await anon.post(
        "/api/v2/users",
        headers=admin,
        json={
            "username": "grace",
            "password": "correct-horse",
            "roles": [{"name": "Op"}],
            "email": "grace@example.com",
            "first_name": "Grace",
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["role"] == "op" and body["roles"] == [{"name": "Op"}]
    assert "password" not in body and "password_hash" not in body
    for bad in (
        {"username": "admin", "password": "whatever-123", "role": "viewer"},  # the bootstrap
        {"username": "x:y", "password": "whatever-123", "role": "viewer"},
        {"username": "short", "password": "short", "role": "viewer"},
        {"username": "z", "password": "whatever-123", "role": "root"},
    ):
        answer = await anon.post("/api/v2/users", headers=admin, json=bad)
        assert answer.status_code in (409, 422), (bad, answer.text)
    await project(settings)
    assert (
        await anon.post(
            "/api/v2/users",
            headers=admin,
            json={"username": "grace", "password": "whatever-123", "role": "viewer"},
        )
    ).status_code == 409

    grace = await login(anon, "grace", "correct-horse")
    assert (
        await anon.post("/api/v2/variables", headers=grace, json={"key": "k", "value": "v"})
    ).status_code == 201
    users = (await anon.get("/api/v2/users", headers=admin)).json()
    assert [u["username"] for u in users["users"]] == ["grace"]
    assert users["users"][0]["created_by"] == "admin"

    demoted = await anon.patch(
        "/api/v2/users/grace", headers=admin, json={"role": "viewer", "password": "new-password-1"}
    )
    assert demoted.status_code == 200, demoted.text
    await project(settings)
    # The old token now carries the new role; the old password no longer works.
    denied = await anon.post("/api/v2/variables", headers=grace, json={"key": "k2", "value": "v"})
    assert denied.status_code == 403
    failed = await anon.post("/auth/token", json={"username": "grace", "password": "correct-horse"})
    assert failed.status_code == 401
    await login(anon, "grace", "new-password-1")

    assert (await anon.delete("/api/v2/users/grace", headers=admin)).status_code == 204
    await project(settings)
    assert (await anon.get("/api/v2/dags", headers=grace)).status_code == 401
    assert (await anon.get("/api/v2/users/grace", headers=admin)).status_code == 404


# --------------------------------------------------------------------------- throttling
async def test_repeated_failed_logins_are_throttled(
    settings: Settings, anon: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await create_user(anon, admin, "target", "viewer")
    await project(settings)
    for _ in range(5):
        response = await anon.post("/auth/token", json={"username": "target", "password": "guess"})
        assert response.status_code == 401
    locked = await anon.post("/auth/token", json={"username": "target", "password": "guess"})
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) >= 1
    # While locked out, even the right password is not checked.
    right = await anon.post("/auth/token", json={"username": "target", "password": "pw-target-123"})
    assert right.status_code == 429
    # Other users (from the same address, under its larger allowance) are not locked out.
    await login(anon, "admin", ADMIN_PASSWORD)


# --------------------------------------------------------------------------- audit
async def test_event_log_records_who_changed_what(
    settings: Settings, anon: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await create_user(anon, admin, "runner", "user")
    await create_user(anon, admin, "operator", "op")
    key = await create_api_key(anon, admin, "nightly", "user")
    await project(settings)
    runner = await login(anon, "runner", "pw-runner-123")
    operator = await login(anon, "operator", "pw-operator-123")

    submitted = await anon.post(
        "/api/v2/dagFiles", headers=runner, json={"filename": "audited.py", "content": HELLO}
    )
    assert submitted.status_code == 201, submitted.text
    await project(settings)
    run = await anon.post(
        "/api/v2/dags/audited/dagRuns", headers=runner, json={"conf": {"password": "hunter2"}}
    )
    assert run.status_code == 200, run.text
    by_key = await anon.post(
        "/api/v2/dags/audited/dagRuns", headers={"X-API-Key": key["key"]}, json={}
    )
    assert by_key.status_code == 200, by_key.text
    assert (
        await anon.patch("/api/v2/dags/audited", headers=runner, json={"is_paused": True})
    ).status_code == 200
    variable = await anon.post(
        "/api/v2/variables", headers=operator, json={"key": "db_password", "value": "s3cr3t"}
    )
    assert variable.status_code == 201
    await project(settings)

    def entries(**params: Any) -> Any:
        return anon.get("/api/v2/eventLogs", headers=runner, params=params)

    triggers = (await entries(event="TriggerDagRun")).json()
    assert triggers["total_entries"] == 2
    assert [e["owner"] for e in triggers["event_logs"]] == ["runner", "apikey:nightly"]
    first = triggers["event_logs"][0]
    assert first["dag_id"] == "audited" and first["run_id"] == run.json()["dag_run_id"]
    assert "hunter2" not in first["extra"]

    [set_var] = (await entries(event="VariableSet")).json()["event_logs"]
    assert set_var["owner"] == "operator"
    assert "s3cr3t" not in set_var["extra"] and "gAAAA" not in set_var["extra"]

    by_runner = (await entries(owner="runner")).json()
    assert {e["event"] for e in by_runner["event_logs"]} == {
        "DagVersionPublished",
        "TriggerDagRun",
        "SetDagPaused",
    }
    users = (await entries(event="UserCreated")).json()
    assert users["total_entries"] == 2 and {e["owner"] for e in users["event_logs"]} == {"admin"}
    assert all("argon2" not in e["extra"] for e in users["event_logs"])

    newest = (await entries(dag_id="audited", order_by="-when", limit=1)).json()
    assert newest["total_entries"] == 4 and newest["event_logs"][0]["event"] == "SetDagPaused"
    one = await anon.get(f"/api/v2/eventLogs/{first['event_log_id']}", headers=runner)
    assert one.status_code == 200 and one.json() == first
    assert (await anon.get("/api/v2/eventLogs/999999", headers=runner)).status_code == 404
    assert (await entries(order_by="nope")).status_code == 400
