"""Postgres plumbing for the projection: schemas, pools, migrations, the rebuild swap.

The projection lives in one schema, :data:`LIVE_SCHEMA`. Every connection puts its
schema first on ``search_path``, and all SQL uses unqualified names, so the same SQL
serves the live schema and a rebuild schema (:data:`REBUILD_SCHEMA`). A rebuild swaps
the schemas by renaming them in one transaction; readers keep working because they
resolve names through ``search_path`` at execution time.
"""

from __future__ import annotations

import json
import logging
from importlib import resources

import asyncpg

log = logging.getLogger(__name__)

LIVE_SCHEMA = "projection"
REBUILD_SCHEMA = "projection_new"

# Advisory lock keys (arbitrary constants, one per purpose).
MIGRATION_LOCK = 0x1ED6E5F10001
# Projector batches hold this shared; the rebuild swap holds it exclusively, so no batch
# straddles the swap.
PROJECTION_WRITE_LOCK = 0x1ED6E5F10002


def quote_ident(name: str) -> str:
    """Quote an SQL identifier (schema names are ours, but quote them anyway)."""
    return '"' + name.replace('"', '""') + '"'


async def setup_codecs(conn: asyncpg.Connection) -> None:
    """Read and write json/jsonb as Python objects."""
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(
            typename, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def create_pool(
    database_url: str, *, schema: str = LIVE_SCHEMA, min_size: int = 1, max_size: int = 10
) -> asyncpg.Pool:
    """A pool whose connections read and write ``schema`` (first on ``search_path``)."""
    pool: asyncpg.Pool = await asyncpg.create_pool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        init=setup_codecs,
        server_settings={"search_path": schema, "application_name": "ledgerflow-api"},
    )
    return pool


def migration_files() -> list[tuple[str, str]]:
    """``(version, sql)`` of every migration shipped with this package, in order."""
    folder = resources.files("ledgerflow.api") / "migrations"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [(f.name.removesuffix(".sql"), f.read_text(encoding="utf-8")) for f in files]


async def migrate(conn: asyncpg.Connection, schema: str) -> list[str]:
    """Create ``schema`` if needed and apply the migrations it lacks, in order.

    Applied versions are recorded in ``schema_migrations`` inside the schema, so a
    rebuild schema starts from nothing. Returns the versions applied now.
    """
    applied_now: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
        await conn.execute(f"SET LOCAL search_path TO {quote_ident(schema)}")
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, sql in migration_files():
            if version in done:
                continue
            log.info("applying migration %s to schema %s", version, schema)
            await conn.execute(sql)
            await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            applied_now.append(version)
    return applied_now


async def drop_schema(conn: asyncpg.Connection, schema: str) -> None:
    await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")


async def schema_exists(conn: asyncpg.Connection, schema: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema))


async def swap_schemas(conn: asyncpg.Connection, *, new: str, live: str = LIVE_SCHEMA) -> None:
    """Make ``new`` the live schema and drop the old one, atomically.

    Holds :data:`PROJECTION_WRITE_LOCK` exclusively so that no projector batch runs
    across the swap; a projector still running against the live schema re-reads its
    offsets on its next batch and notices the change (see ``projector``).
    """
    old = f"{live}_old"
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", PROJECTION_WRITE_LOCK)
        await drop_schema(conn, old)
        if await schema_exists(conn, live):
            await conn.execute(f"ALTER SCHEMA {quote_ident(live)} RENAME TO {quote_ident(old)}")
        await conn.execute(f"ALTER SCHEMA {quote_ident(new)} RENAME TO {quote_ident(live)}")
        await drop_schema(conn, old)
