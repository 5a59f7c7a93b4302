"""Fixtures for tests that drive the API while the projector (and, when asked, the
scheduler) run in the background against real Kafka and Postgres.

Import the fixtures into a test module: ``from tests.integration.live_api import *``.
Each test gets its own topic prefix and database.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import pytest
from ledgerflow.api import db, projector
from ledgerflow.api.app import create_app
from ledgerflow.common.kafka_io import ensure_topics
from ledgerflow.common.settings import Settings

KAFKA = os.environ.get("LEDGERFLOW_KAFKA_BOOTSTRAP", "127.0.0.1:29092")
DATABASE = os.environ.get(
    "LEDGERFLOW_DATABASE_URL", "postgresql://ledgerflow@127.0.0.1:25432/ledgerflow"
)
PASSWORD = "s3cret"
FERNET_KEY = "Jb4d0t0ZQ2Xy8yqf7c4m3fH9Q6yqkzj0x8nT3YvU1hE="

HELLO = """\
from ledgerflow.sdk import DAG, task

with DAG("hello_live", tags=["example"]):
    @task
    def greet():
        return "hello"

    @task
    def shout(word):
        return word.upper()

    shout(greet())
"""


@pytest.fixture
async def settings() -> AsyncIterator[Settings]:
    name = f"lf_test_live_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(DATABASE)
    await admin.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = DATABASE.rpartition("/")
    s = Settings(
        kafka_bootstrap=KAFKA,
        database_url=f"{base}/{name}",
        topic_prefix=f"dev-api-live-{uuid.uuid4().hex[:8]}",
        partitions=2,
        work_partitions=2,
        admin_password=PASSWORD,
        fernet_key=FERNET_KEY,
    )
    await ensure_topics(s)
    try:
        yield s
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@contextlib.asynccontextmanager
async def background(*coros: Awaitable[Any]) -> AsyncIterator[None]:
    """Run services until the block ends (then cancel them)."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        yield
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t


async def migrated(settings: Settings) -> None:
    """Create the projection schema (what a starting projector does first)."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        await db.migrate(conn, db.LIVE_SCHEMA)
    finally:
        await conn.close()


@pytest.fixture
async def projector_running(settings: Settings) -> AsyncIterator[None]:
    await migrated(settings)
    async with background(projector.run(settings)):
        yield


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api", timeout=30) as c:
            r = await c.post("/auth/token", json={"username": "admin", "password": PASSWORD})
            assert r.status_code == 201, r.text
            c.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
            yield c


async def eventually(
    check: Callable[[], Awaitable[Any]], *, within_s: float = 30, every_s: float = 0.1
) -> Any:
    """Poll ``check`` until it returns something truthy."""
    async with asyncio.timeout(within_s):
        while True:
            with contextlib.suppress(AssertionError):
                result = await check()
                if result:
                    return result
            await asyncio.sleep(every_s)


__all__ = [
    "HELLO",
    "background",
    "client",
    "eventually",
    "migrated",
    "projector_running",
    "settings",
]
