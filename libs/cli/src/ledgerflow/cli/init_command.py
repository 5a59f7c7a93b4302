"""One-shot set-up of a deployment: create the topics, apply the projection migrations.

``python -m ledgerflow.cli.init_command [--queue Q ...] [--wait S]`` is the compose
``init`` service and the Kubernetes ``ledgerflow-init`` Job. Every service would create
what it needs on start anyway (``ensure_topics``; the projector migrates); doing it once
up front means services start against a complete set-up, and lets a production install
run this step alone with credentials allowed to create topics and schemas while the
services run with narrower ones. Idempotent: run it on every upgrade.

Waits (up to ``--wait`` seconds) for Kafka and Postgres to answer, because in a fresh
cluster they may come up after this Job.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Sequence

from ledgerflow.cli.logging_setup import configure_logging
from ledgerflow.common.kafka_io import ensure_topics
from ledgerflow.common.settings import Settings
from pydantic import ValidationError

log = logging.getLogger("ledgerflow.cli.init")


async def _retrying(what: str, step: Callable[[], Awaitable[object]], deadline: float) -> None:
    delay = 1.0
    while True:
        try:
            await step()
            return
        except Exception as exc:  # unreachable servers raise many types; retry them all
            if time.monotonic() + delay > deadline:
                raise RuntimeError(f"{what} failed: {exc!r}") from exc
            log.warning("%s failed (%r); retrying in %.0f s", what, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


async def initialize(settings: Settings, *, queues: Sequence[str], wait_s: float) -> None:
    """Create every topic (event topics plus one work topic per queue) and migrate the
    live projection schema."""
    from ledgerflow.api import db  # the migrations ship with the api package

    deadline = time.monotonic() + wait_s

    async def topics() -> None:
        await ensure_topics(settings, queues=queues)

    async def migrations() -> None:
        pool = await db.create_pool(
            settings.database_url, schema=db.LIVE_SCHEMA, min_size=1, max_size=1
        )
        try:
            async with pool.acquire() as conn:
                applied = await db.migrate(conn, db.LIVE_SCHEMA)
        finally:
            await pool.close()
        log.info("projection schema %s: applied %s", db.LIVE_SCHEMA, applied or "nothing new")

    await _retrying(f"creating topics on {settings.kafka_bootstrap}", topics, deadline)
    log.info("topics ready under prefix %r (queues: %s)", settings.topic_prefix, ", ".join(queues))
    await _retrying("migrating the projection", migrations, deadline)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ledgerflow.cli.init_command",
        description="Create ledgerflow's Kafka topics and apply the projection migrations.",
    )
    parser.add_argument(
        "--queue",
        action="append",
        dest="queues",
        metavar="Q",
        help="an executor queue whose work topic to create (repeatable; default: default)",
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=300.0,
        metavar="S",
        help="keep retrying while Kafka or Postgres is unreachable, up to S seconds",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging("init")
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"ledgerflow init: invalid configuration: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(initialize(settings, queues=args.queues or ["default"], wait_s=args.wait))
    except RuntimeError as exc:
        log.error("%s", exc)
        return 1
    log.info("initialized")
    return 0


if __name__ == "__main__":
    sys.exit(main())
