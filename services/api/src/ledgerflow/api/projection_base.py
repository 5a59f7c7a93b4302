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


_PLANNED: dict[str, None] = {}  # every statement a plan may emit, in registration order
_UNREGISTERED: set[str] = set()


def planned_sql(sql: str) -> str:
    """Register ``sql`` as a statement that plans emit, and return it unchanged.

    Registered statements are what the projector's dispatch function holds
    (:mod:`ledgerflow.api.projection_dispatch`): the batch path sends them all in one
    round trip. A plan that emits an unregistered statement still works, one round trip
    for that statement, and :func:`unregistered_statements` names it (a test checks that
    the realistic workload's plans emit none)."""
    _PLANNED.setdefault(sql, None)
    return sql


def registered_statements() -> tuple[str, ...]:
    return tuple(_PLANNED)


def unregistered_statements() -> frozenset[str]:
    """Statements that plans emitted in this process without being registered."""
    return frozenset(_UNREGISTERED)


def note_unregistered(sql: str) -> None:
    if sql not in _PLANNED:
        _UNREGISTERED.add(sql)


@dataclass(frozen=True)
class PlannedHandler:
    """A handler given as a plan: ``plan(envelope)`` returns the statements the event
    runs, in order, each registered with :func:`planned_sql`. Register it like any
    handler: calling it runs the plan statement by statement (the per-event path); the
    batch path sends the plans of consecutive planned events, in delivery order, in one
    round trip."""

    plan: Callable[[ev.Envelope], Sequence[Statement]]

    async def __call__(self, conn: asyncpg.Connection, env: ev.Envelope) -> None:
        for sql, args in self.plan(env):
            note_unregistered(sql)
            await conn.execute(sql, *args)
