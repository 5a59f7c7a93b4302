"""Remembers which attempts this process has run, so a redelivered work item is not run
twice. Pure, bounded, no I/O."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

AttemptId = tuple[str, str, str, int, int]
"""(dag_id, run_id, task_id, map_index, try_number)"""


class RecentAttempts:
    """A bounded LRU of finished attempts plus the set of running ones.

    Each running attempt carries the work-item positions waiting on it: a duplicate that
    arrives while the original runs is acknowledged only when the original reports, so
    committing it never skips work that has not been reported yet.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._finished: OrderedDict[AttemptId, None] = OrderedDict()
        self._running: dict[AttemptId, list[Any]] = {}

    def is_running(self, attempt: AttemptId) -> bool:
        return attempt in self._running

    def is_finished(self, attempt: AttemptId) -> bool:
        if attempt in self._finished:
            self._finished.move_to_end(attempt)
            return True
        return False

    def begin(self, attempt: AttemptId, position: Any) -> None:
        """The attempt starts running for the work item at ``position``."""
        self._running[attempt] = [position]

    def attach(self, attempt: AttemptId, position: Any) -> None:
        """A duplicate work item for a running attempt: settle it with the original."""
        self._running[attempt].append(position)

    def started(self, attempt: AttemptId) -> list[Any]:
        """The attempt's start is acknowledged: returns the work-item positions waiting
        on it so far (later duplicates are settled when it finishes)."""
        positions = self._running.get(attempt)
        if positions is None:
            return []
        self._running[attempt] = []
        return positions

    def finish(self, attempt: AttemptId) -> list[Any]:
        """The attempt reported; returns the work-item positions it settles."""
        positions = self._running.pop(attempt, [])
        self._finished[attempt] = None
        self._finished.move_to_end(attempt)
        while len(self._finished) > self._capacity:
            self._finished.popitem(last=False)
        return positions

    def abandon(self, attempt: AttemptId) -> list[Any]:
        """The attempt never ran (shutdown first): forget it, settle nothing."""
        return self._running.pop(attempt, [])

    @property
    def running_count(self) -> int:
        return len(self._running)
