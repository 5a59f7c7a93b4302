"""``ledgerflow events tail [--topic NAME ...] [--from beginning|end]``: print envelopes
as they reach Kafka, read directly (no consumer group: it never moves anyone's offsets).

One JSON document per line (``--output json``, the default here), or YAML documents, or
a one-line summary per event (``--output table``). ``--max N`` stops after N events and
``--idle-timeout S`` after S seconds without one (both for scripts and tests).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from ledgerflow.cli import output
from ledgerflow.cli.context import CliContext
from ledgerflow.cli.errors import CliError
from ledgerflow.common.kafka_io import consumer_config
from ledgerflow.common.settings import Settings

TOPIC_NAMES = ("dags", "commands", "runs", "logs", "config", "control")


def register(commands: Any, help_of: Any) -> None:
    events = commands.add_parser("events", help="read the event log")
    events_cmds = events.add_subparsers(dest="events_command", metavar="COMMAND")
    events.set_defaults(handler=help_of(events))
    p = events_cmds.add_parser(
        "tail",
        help="print events as they arrive (straight from Kafka)",
        description="Print envelopes from the event topics. Topics by short name ("
        + ", ".join(TOPIC_NAMES)
        + ") or full name; default: every event topic.",
    )
    p.add_argument("--topic", action="append", help="a topic to read (repeatable)")
    p.add_argument(
        "--from",
        dest="start",
        choices=("beginning", "end"),
        default="end",
        help="start at the oldest event or only show new ones (default: end)",
    )
    p.add_argument("--max", type=int, default=None, metavar="N", help="stop after N events")
    p.add_argument(
        "--idle-timeout", type=float, default=None, metavar="S", help="stop after S idle seconds"
    )
    p.set_defaults(handler=cmd_events_tail)


def resolve_topics(settings: Settings, names: list[str] | None) -> list[str]:
    topics = settings.topics
    if not names:
        return list(topics.event_topics)
    found = []
    for name in names:
        if name in TOPIC_NAMES:
            found.append(str(getattr(topics, name)))
        else:
            found.append(name)
    return found


def render(record: Any, fmt: str) -> str:
    """One record as the chosen format (a record that is not JSON is shown as text)."""
    envelope: Any
    try:
        envelope = json.loads(record.value)
    except (ValueError, TypeError):
        envelope = {"raw": record.value.decode("utf-8", "replace") if record.value else None}
    if fmt == "yaml":
        return "---\n" + output.to_yaml(envelope)
    if fmt == "table":
        data = envelope.get("data") if isinstance(envelope, dict) else None
        kind = str(data.get("type") if isinstance(data, dict) else envelope.get("type", "?"))
        key = record.key.decode("utf-8", "replace") if record.key else "-"
        when = str(envelope.get("time", "-")) if isinstance(envelope, dict) else "-"
        return f"{when}  {record.topic}[{record.partition}]@{record.offset}  {kind}  {key}\n"
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False) + "\n"


async def tail(
    settings: Settings,
    topics: list[str],
    *,
    start: str,
    fmt: str,
    max_events: int | None,
    idle_timeout: float | None,
) -> int:
    config = consumer_config(settings)
    config.update(group_id=None, enable_auto_commit=False, client_id="ledgerflow-events-tail")
    consumer = AIOKafkaConsumer(**config)
    await consumer.start()
    shown = 0
    try:
        partitions = []
        for topic in topics:
            known = consumer.partitions_for_topic(topic) or await _partitions(consumer, topic)
            if not known:
                raise CliError(f"no such topic: {topic}")
            partitions += [TopicPartition(topic, p) for p in sorted(known)]
        consumer.assign(partitions)
        if start == "beginning":
            await consumer.seek_to_beginning(*partitions)
        else:
            await consumer.seek_to_end(*partitions)
        last = time.monotonic()
        while max_events is None or shown < max_events:
            batches = await consumer.getmany(timeout_ms=200)
            records = sorted(
                (r for rs in batches.values() for r in rs), key=lambda r: (r.timestamp, r.offset)
            )
            for record in records:
                sys.stdout.write(render(record, fmt))
                shown += 1
                if max_events is not None and shown >= max_events:
                    break
            sys.stdout.flush()
            if records:
                last = time.monotonic()
            elif idle_timeout is not None and time.monotonic() - last >= idle_timeout:
                break
    finally:
        await consumer.stop()
    return 0


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or set()


def cmd_events_tail(args: argparse.Namespace, ctx: CliContext) -> int:
    topics = resolve_topics(ctx.settings, args.topic)
    # Envelopes are JSON already: the default table output would hide them, so the
    # table format here is a one-line summary and JSON lines is the default.
    fmt = ctx.output if ctx.output_given else "json"
    try:
        return asyncio.run(
            tail(
                ctx.settings,
                topics,
                start=args.start,
                fmt=fmt,
                max_events=args.max,
                idle_timeout=args.idle_timeout,
            )
        )
    except OSError as exc:
        raise CliError(f"cannot read Kafka at {ctx.settings.kafka_bootstrap}: {exc}") from exc
