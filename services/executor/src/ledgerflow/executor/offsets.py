"""Which work-item offsets may be committed. Pure bookkeeping, no I/O.

Work items finish out of order (slots run several at once), but a Kafka commit is one
number per partition meaning "everything below this is done". So a partition may only
be committed up to its lowest offset that is still in flight (received but not yet
reported). A crash then never skips a work item, and a long task holds back only its
own partition's commit point, never the running of the items behind it.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field


@dataclass
class _PartitionOffsets:
    in_flight: set[int] = field(default_factory=set)
    next_after_seen: int | None = None  # highest offset received + 1
    committed: int | None = None  # last commit point written for this partition


class OffsetTracker:
    """Tracks received and finished offsets per partition; computes commit points.

    Keys are opaque hashables (aiokafka ``TopicPartition`` in the service).
    """

    def __init__(self) -> None:
        self._parts: dict[Hashable, _PartitionOffsets] = {}

    def received(self, tp: Hashable, offset: int) -> None:
        """A record at ``offset`` was fetched and is now in flight."""
        p = self._parts.setdefault(tp, _PartitionOffsets())
        p.in_flight.add(offset)
        if p.next_after_seen is None or offset + 1 > p.next_after_seen:
            p.next_after_seen = offset + 1

    def done(self, tp: Hashable, offset: int) -> None:
        """The record at ``offset`` is fully handled (its report is acknowledged)."""
        p = self._parts.get(tp)
        if p is not None:
            p.in_flight.discard(offset)

    def commit_point(self, tp: Hashable) -> int | None:
        """The offset to commit for ``tp`` (next record to read), or None if unknown."""
        p = self._parts.get(tp)
        if p is None or p.next_after_seen is None:
            return None
        return min(p.in_flight) if p.in_flight else p.next_after_seen

    def pending_commits(self, tps: Iterable[Hashable] | None = None) -> dict[Hashable, int]:
        """Commit points that moved past what was last committed."""
        out: dict[Hashable, int] = {}
        for tp in list(self._parts) if tps is None else tps:
            point = self.commit_point(tp)
            p = self._parts.get(tp)
            if point is not None and p is not None and (p.committed is None or point > p.committed):
                out[tp] = point
        return out

    def committed(self, offsets: dict[Hashable, int]) -> None:
        """Record that these commit points were accepted by the broker."""
        for tp, off in offsets.items():
            p = self._parts.get(tp)
            if p is not None and (p.committed is None or off > p.committed):
                p.committed = off

    def forget(self, tps: Iterable[Hashable]) -> None:
        """Drop partitions this consumer no longer owns (after a rebalance)."""
        for tp in tps:
            self._parts.pop(tp, None)

    def in_flight(self, tp: Hashable) -> frozenset[int]:
        p = self._parts.get(tp)
        return frozenset(p.in_flight) if p else frozenset()
