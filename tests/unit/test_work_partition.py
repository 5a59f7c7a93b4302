"""Which work topic partition an attempt goes to (ADR 0002, "work items")."""

from __future__ import annotations

from collections import Counter

from aiokafka.partitioner import DefaultPartitioner  # type: ignore[import-untyped]
from ledgerflow.common.topics import attempt_key
from ledgerflow.scheduler.work_ledger import work_partition


def test_mapped_instances_spread_evenly_over_the_partitions() -> None:
    counts = Counter(work_partition("d", "r", "t", i, 1, 8) for i in range(48))
    assert sorted(counts.values()) == [6] * 8
    wide = Counter(work_partition("d", "r", "t", i, 1, 8) for i in range(1000))
    assert max(wide.values()) - min(wide.values()) <= 1


def test_unmapped_attempts_go_where_kafkas_default_partitioner_puts_their_key() -> None:
    partitioner = DefaultPartitioner()
    for task in ("a", "b", "extract", "load_1"):
        key = attempt_key("d", "r", task, -1, 1).encode()
        expected = partitioner(key, list(range(8)), list(range(8)))
        assert work_partition("d", "r", task, -1, 1, 8) == expected


def test_the_same_attempt_always_maps_to_the_same_partition_and_a_retry_moves_on() -> None:
    first = work_partition("d", "r", "t", 5, 1, 8)
    assert work_partition("d", "r", "t", 5, 1, 8) == first
    assert work_partition("d", "r", "t", 5, 2, 8) == (first + 1) % 8


def test_runs_and_tasks_start_at_different_partitions() -> None:
    starts = {work_partition("d", f"run_{n}", "t", 0, 1, 8) for n in range(40)}
    assert len(starts) > 4  # not every map starting on partition 0
