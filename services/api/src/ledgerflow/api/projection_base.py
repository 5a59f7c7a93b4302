"""The shapes of projection handlers, shared by :mod:`ledgerflow.api.projection` and
the modules that hold groups of handlers (see the former's docstring)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from ledgerflow.common import events as ev

Handler = Callable[[asyncpg.Connection, Any], Awaitable[None]]
Statement = tuple[str, tuple[Any, ...]]
"""One SQL statement and its arguments."""


@dataclass(frozen=True)
class PlannedHandler:
    """A handler given as a plan (see the module docstring).

    ``plan(envelope)`` returns the statements in order; ``key(envelope)`` is a tuple
    naming every row they touch, read or written, as a path: a key covers the keys it
    is a prefix of (``("run", dag, run)`` covers ``("run", dag, run, "ti", task, -1)``).
    Two events whose keys do not cover one another must commute: running one's
    statements before, after or between the other's gives the same rows. Register it
    like any handler: calling it runs the plan in order.
    """

    plan: Callable[[ev.Envelope], Sequence[Statement]]
    key: Callable[[ev.Envelope], tuple[Any, ...]]

    async def __call__(self, conn: asyncpg.Connection, env: ev.Envelope) -> None:
        for sql, args in self.plan(env):
            await conn.execute(sql, *args)


def ti_row_key(env: ev.Envelope) -> tuple[Any, ...]:
    """Task instance facts touch the task instance, its attempts, XComs and reschedules."""
    p = env.data
    return ("run", p.dag_id, p.run_id, "ti", p.task_id, p.map_index)
