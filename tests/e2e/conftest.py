from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from .system import System


def _infra() -> tuple[str, str]:
    kafka = os.environ.get("LEDGERFLOW_KAFKA_BOOTSTRAP")
    db = os.environ.get("LEDGERFLOW_DATABASE_URL")
    if not kafka or not db:
        pytest.skip(
            "end-to-end tests need LEDGERFLOW_KAFKA_BOOTSTRAP and LEDGERFLOW_DATABASE_URL "
            "(make test starts both)"
        )
    return kafka, db


async def _create_db(base_url: str, name: str) -> str:
    conn = await asyncpg.connect(base_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return base_url.rsplit("/", 1)[0] + "/" + name


async def _drop_db(base_url: str, name: str) -> None:
    conn = await asyncpg.connect(base_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    kafka, base_db = _infra()
    name = f"e2e_{uuid.uuid4().hex[:10]}"
    db_url = asyncio.run(_create_db(base_db, name))
    workdir: Path = tmp_path_factory.mktemp("system")
    s = System(kafka_bootstrap=kafka, database_url=db_url, workdir=workdir)
    try:
        s.start_all()
        yield s
    finally:
        s.stop_all()
        asyncio.run(_drop_db(base_db, name))
