"""Fixtures shared by the integration and end-to-end tests.

`make test` (deploy/local/test.sh) starts a throw-away Kafka and Postgres and exports
``LEDGERFLOW_KAFKA_BOOTSTRAP`` and ``LEDGERFLOW_DATABASE_URL``; these fixtures read them.
Run outside `make test`, the tests that need a server are skipped with the reason.

Isolation: every test gets its own topic prefix (``topic_prefix``) and, when it asks for
one, its own database (``fresh_database``), so tests never see each other's data.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from ledgerflow.common.secrets import generate_key
from ledgerflow.common.settings import Settings

KAFKA_ENV = "LEDGERFLOW_KAFKA_BOOTSTRAP"
DATABASE_ENV = "LEDGERFLOW_DATABASE_URL"


def _required_env(name: str, what: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        pytest.skip(
            f"{name} is not set: this test needs a real {what}. "
            "Run it through `make test` (or deploy/local/test.sh ARGS), which starts one."
        )
    return value


def _run_sync(make_coro: Callable[[], Any]) -> Any:
    """Run a coroutine to completion from sync code, even inside a running event loop.

    Fixtures here are sync so they work under any event-loop scope; a fresh thread owns
    its own loop, so this is safe to call from an async test too.
    """
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = asyncio.run(make_coro())
        except BaseException as exc:  # re-raised in the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=target, name="conftest-asyncpg")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")


def with_database(url: str, database: str) -> str:
    """``url`` pointing at ``database`` instead of the one it names."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


async def _create_database(admin_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_database(admin_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        # WITH (FORCE) closes connections a test left open (PostgreSQL 13+).
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """``host:port`` of the real Kafka broker the tests run against."""
    return _required_env(KAFKA_ENV, "Kafka broker")


@pytest.fixture(scope="session")
def database_url() -> str:
    """URL of the real Postgres server's ``ledgerflow`` database (shared: prefer
    ``fresh_database`` for anything that writes)."""
    return _required_env(DATABASE_ENV, "PostgreSQL server")


@pytest.fixture(scope="session")
def database_factory(database_url: str) -> Iterator[Callable[[], str]]:
    """Call it to create a new, empty, uniquely named database; returns its URL.

    Every database it made is dropped at the end of the session (the function- and
    module-scoped fixtures below drop theirs sooner).
    """
    made: list[str] = []

    def create() -> str:
        name = f"lf_t_{uuid.uuid4().hex[:12]}"
        _run_sync(lambda: _create_database(database_url, name))
        made.append(name)
        return with_database(database_url, name)

    yield create
    for name in made:
        _run_sync(lambda name=name: _drop_database(database_url, name))


def _scoped_database(database_url: str) -> Iterator[str]:
    name = f"lf_t_{uuid.uuid4().hex[:12]}"
    _run_sync(lambda: _create_database(database_url, name))
    try:
        yield with_database(database_url, name)
    finally:
        _run_sync(lambda: _drop_database(database_url, name))


@pytest.fixture
def fresh_database(database_url: str) -> Iterator[str]:
    """URL of a new, empty database made for this test and dropped after it."""
    yield from _scoped_database(database_url)


@pytest.fixture(scope="module")
def module_database(database_url: str) -> Iterator[str]:
    """URL of a new, empty database shared by the tests of one module."""
    yield from _scoped_database(database_url)


@pytest.fixture
def topic_prefix() -> str:
    """A topic prefix no other test uses, e.g. ``t-1a2b3c4d``."""
    return f"t-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def make_settings(
    request: pytest.FixtureRequest, kafka_bootstrap: str, topic_prefix: str
) -> Callable[..., Settings]:
    """Factory: ``make_settings(**overrides)`` -> :class:`Settings` for this test.

    Defaults: the test Kafka, this test's ``topic_prefix``, a Fernet key of its own (the
    same for every call in one test) and, unless ``database_url``
    is overridden, this test's ``fresh_database`` (created on first use only, so a
    Kafka-only test needs no Postgres).
    """

    fernet_key = generate_key()  # one per test: the api and executors must share it

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "kafka_bootstrap": kafka_bootstrap,
            "topic_prefix": topic_prefix,
            "fernet_key": fernet_key,
        }
        if "database_url" not in overrides:
            values["database_url"] = request.getfixturevalue("fresh_database")
        values.update(overrides)
        return Settings(**values)

    return make
