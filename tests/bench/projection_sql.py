"""The projection's SQL alone: what Postgres takes per event, without Kafka or the loop.

The projector benchmark's event mix (``tests.bench.projector.workload``) is prepared
as the projector prepares fetched records (``projection_batch.prepare``), then applied
into a fresh database in batches, each one transaction: the raw events (one statement),
then the planned statements (one ``executemany`` of the dispatch function), commit. The
table gives, per block of 10,000 events, the wall time per event of the two round trips
and the CPU per event of the Postgres backend (from ``/proc``, so Postgres must run on
this machine): the cost as the tables grow. The young tables are analyzed as the
projector does (``--no-analyze``: not; see ``Projector._analyze``). With
``--statements``, and the ``pg_stat_statements`` extension loaded
(``shared_preload_libraries``), it also lists each statement's time, the dispatched ones
counted on their own (``track = all``).

    uv run --frozen python -m tests.bench.projection_sql [--events 40000] [--batch 80]
        [--statements] [--no-analyze]

Needs ``LEDGERFLOW_DATABASE_URL``. Nothing else should run meanwhile: it is a
comparison tool (alternate two versions of the code), not a target.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from datetime import UTC, datetime

import asyncpg
from ledgerflow.api import db, projection_dispatch
from ledgerflow.api.projection_batch import Delivered, Prepared, prepare, store_raw
from ledgerflow.api.projector import ANALYZE_FIRST_AT, ANALYZED
from ledgerflow.common import events as ev

from tests.bench.projector import workload

BLOCK = 10_000


def prepared_events(n: int) -> list[Prepared]:
    stream = workload()
    offsets: dict[str, int] = {}
    out = []
    for _ in range(n):
        kind, payload, key, correlation, sequence = next(stream)
        envelope = ev.make_envelope(
            payload,
            id=str(uuid.uuid4()),
            source="bench/projection_sql",
            time=datetime.now(UTC),
            aggregate_key=key,
            sequence=sequence,
            correlation_id=correlation,
        )
        topic = f"bench.{kind}"
        offset = offsets.get(topic, 0)
        offsets[topic] = offset + 1
        out.append(prepare(Delivered(envelope, topic, 0, offset, None)))
    return out


def backend_cpu_s(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def bench(events: int, batch: int, statements: bool, analyze: bool) -> None:
    base = os.environ["LEDGERFLOW_DATABASE_URL"]
    name = f"bench_sql_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(base)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        pool = await db.create_pool(base.rsplit("/", 1)[0] + "/" + name, schema=db.LIVE_SCHEMA)
        try:
            async with pool.acquire() as conn:
                await db.migrate(conn, db.LIVE_SCHEMA)
                dispatcher = await projection_dispatch.install(conn)
                assert dispatcher is not None
                items = prepared_events(events)
                if statements:
                    await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
                    await conn.execute("SELECT pg_stat_statements_reset()")
                pid = await conn.fetchval("SELECT pg_backend_pid()")
                print(f"\nThe projection's SQL, batches of {batch} events ({events} in all)\n")
                print(
                    "| events | raw events (µs/event) | statements (µs/event) "
                    "| backend CPU (µs/event) | database size |"
                )
                print("|---|---:|---:|---:|---:|")
                raw = dispatch = 0.0
                cpu = backend_cpu_s(pid)
                block_start = 0
                analyze_at = ANALYZE_FIRST_AT
                for start in range(0, events, batch):
                    chunk = items[start : start + batch]
                    await conn.execute("BEGIN")
                    t0 = time.perf_counter()
                    await store_raw(conn, chunk)
                    t1 = time.perf_counter()
                    rows = [dispatcher.row(sql, args) for p in chunk for sql, args in p.plan or ()]
                    await dispatcher.run(conn, [r for r in rows if r is not None])
                    raw += t1 - t0
                    dispatch += time.perf_counter() - t1
                    await conn.execute("COMMIT")
                    done = start + len(chunk)
                    if analyze and done >= analyze_at:  # as the projector does (its CPU too)
                        await conn.execute("ANALYZE " + ", ".join(ANALYZED))
                        analyze_at *= 2
                    if done - block_start >= BLOCK or done == events:
                        n = done - block_start
                        block_start = done
                        now = backend_cpu_s(pid)
                        size = await conn.fetchval(
                            "SELECT pg_size_pretty(pg_database_size(current_database()))"
                        )
                        print(
                            f"| {done} | {raw / n * 1e6:.1f} | {dispatch / n * 1e6:.1f} "
                            f"| {(now - cpu) / n * 1e6:.1f} | {size} |"
                        )
                        raw = dispatch = 0.0
                        cpu = now
                if statements:
                    await print_statements(conn, events)
        finally:
            await pool.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def print_statements(conn: asyncpg.Connection, events: int) -> None:
    rows = await conn.fetch(
        "SELECT calls, total_exec_time, query FROM pg_stat_statements"
        " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " ORDER BY total_exec_time DESC LIMIT 15"
    )
    print("\n| calls | µs/event | µs/call | statement |\n|---:|---:|---:|---|")
    for r in rows:
        text = " ".join(r["query"].split())[:90].replace("|", "/")
        per_event = r["total_exec_time"] / events * 1000
        per_call = r["total_exec_time"] / r["calls"] * 1000
        print(f"| {r['calls']} | {per_event:.1f} | {per_call:.1f} | `{text}` |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=40_000)
    ap.add_argument("--batch", type=int, default=80)
    ap.add_argument(
        "--statements", action="store_true", help="per statement (needs pg_stat_statements)"
    )
    ap.add_argument(
        "--no-analyze",
        action="store_true",
        help="do not analyze the young tables as the projector does (plans made on empty"
        " tables then stay)",
    )
    args = ap.parse_args(argv)
    if args.events < 1 or args.batch < 1:
        ap.error("--events and --batch must be at least 1")
    asyncio.run(bench(args.events, args.batch, args.statements, not args.no_analyze))
    return 0


if __name__ == "__main__":
    sys.exit(main())
