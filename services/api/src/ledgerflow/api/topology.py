"""Which partitions the event topics have, and how far each one's log reaches."""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


async def partitions_of(admin: AIOKafkaAdminClient, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of ``topics`` (sorted); raises ``LookupError`` for a missing topic."""
    wanted = list(topics)
    described = await admin.describe_topics(wanted)
    found: dict[str, list[int]] = {}
    for topic in described:
        if topic.get("error_code", 0) == 0:
            found[topic["topic"]] = sorted(p["partition"] for p in topic["partitions"])
    missing = [t for t in wanted if not found.get(t)]
    if missing:
        raise LookupError(f"topics not found: {', '.join(missing)}")
    return [TopicPartition(t, p) for t in wanted for p in found[t]]
