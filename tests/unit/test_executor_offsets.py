"""The executor's bookkeeping: commit points and duplicate detection (pure)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from ledgerflow.executor.offsets import OffsetTracker
from ledgerflow.executor.recent import RecentAttempts


def test_commit_point_stops_at_lowest_unfinished_offset() -> None:
    t = OffsetTracker()
    for off in (10, 11, 12):
        t.received("p0", off)
    assert t.commit_point("p0") == 10
    t.done("p0", 11)  # a later item finishes first
    assert t.commit_point("p0") == 10
    t.done("p0", 10)
    assert t.commit_point("p0") == 12
    t.done("p0", 12)
    assert t.commit_point("p0") == 13


def test_partitions_are_independent() -> None:
    t = OffsetTracker()
    t.received("p0", 5)
    t.received("p1", 7)
    t.done("p1", 7)
    assert t.pending_commits() == {"p0": 5, "p1": 8}


def test_pending_commits_only_lists_moved_points() -> None:
    t = OffsetTracker()
    t.received("p0", 0)
    t.done("p0", 0)
    assert t.pending_commits() == {"p0": 1}
    t.committed({"p0": 1})
    assert t.pending_commits() == {}
    t.received("p0", 1)
    assert t.pending_commits() == {}  # still 1: offset 1 in flight
    t.done("p0", 1)
    assert t.pending_commits() == {"p0": 2}


def test_forget_drops_a_partition_and_late_done_is_harmless() -> None:
    t = OffsetTracker()
    t.received("p0", 3)
    t.forget(["p0"])
    t.done("p0", 3)
    assert t.commit_point("p0") is None
    assert t.pending_commits() == {}


@given(st.permutations(list(range(20))), st.integers(min_value=0, max_value=20))
def test_never_commits_past_an_unfinished_item(order: list[int], n_done: int) -> None:
    t = OffsetTracker()
    for off in range(20):
        t.received("p", off)
    finished = set(order[:n_done])
    for off in order[:n_done]:
        t.done("p", off)
    point = t.commit_point("p")
    assert point is not None
    assert all(off in finished for off in range(point))  # everything below is done
    assert point == 20 or point not in finished


def test_recent_attempts_settles_duplicates_with_the_original() -> None:
    r = RecentAttempts(capacity=2)
    a = ("d", "r", "t", -1, 1)
    r.begin(a, ("p0", 1))
    assert r.is_running(a)
    r.attach(a, ("p0", 5))  # redelivered while running
    assert r.finish(a) == [("p0", 1), ("p0", 5)]
    assert r.is_finished(a) and not r.is_running(a)


def test_recent_attempts_is_bounded_lru() -> None:
    r = RecentAttempts(capacity=2)
    ids = [("d", "r", f"t{i}", -1, 1) for i in range(3)]
    for i, a in enumerate(ids):
        r.begin(a, ("p", i))
        r.finish(a)
    assert not r.is_finished(ids[0])
    assert r.is_finished(ids[1]) and r.is_finished(ids[2])


def test_abandoned_attempt_is_not_remembered_as_finished() -> None:
    r = RecentAttempts()
    a = ("d", "r", "t", -1, 1)
    r.begin(a, ("p", 0))
    assert r.abandon(a) == [("p", 0)]
    assert not r.is_finished(a) and not r.is_running(a)
