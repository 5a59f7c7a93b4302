"""Every planned statement of a batch in one round trip, in delivery order (ADR 0004).

The hot handlers are plans: lists of ``(sql, args)`` (:class:`PlannedHandler`). Run one
``execute`` at a time, a batch of a hundred events costs a few hundred round trips; on
a small machine each costs ~0.2 ms of the projector's and Postgres's time, more than
most statements take to run. Grouping statements by SQL saves round trips but must
reorder events, and still leaves dozens per batch.

The dispatcher removes the round trips without reordering anything. Every statement
that plans may emit is registered (:func:`~ledgerflow.api.projection_base.planned_sql`);
at start the projector installs one PL/pgSQL function in the projection schema holding
all of them, each under a number::

    lf_apply_<hash>(which integer, <typed slots>) ... CASE which WHEN 0 THEN <sql 0> ...

A statement's parameters go to slots of their own Postgres type (the types Postgres
infers when it prepares the statement alone), so the function takes the same values,
encoded the same way, as the statement would. The batch path then sends its statements,
in order, as the rows of one ``executemany`` of ``SELECT lf_apply_<hash>(...)``. PL/pgSQL
keeps a prepared plan per statement, so Postgres does the same work per row as before.

The name carries a hash of the function's text: two versions of the code never fight
over one function, and a schema swapped in by a rebuild brings its own.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from ledgerflow.api.projection_base import registered_statements

# Advisory lock held while installing (two projectors starting on one schema).
DISPATCH_LOCK = 0x1ED6E5F10003
MAX_PARAMETERS = 100  # Postgres's FUNC_MAX_ARGS
_PARAM = re.compile(r"\$(\d+)(?!\d)")
_QUOTE = "$lf_apply$"
_COMMENT = re.compile(r"--[^\n]*")
_LITERAL = re.compile(r"'(?:[^']|'')*'")


def _dollar_in_literal(sql: str) -> bool:
    """Parameters are renumbered as plain text, so a ``$`` inside a string would be too."""
    return any("$" in literal for literal in _LITERAL.findall(_COMMENT.sub("", sql)))


@dataclass(frozen=True)
class Dispatcher:
    """An installed dispatch function: turns statements into rows of its one call."""

    name: str
    width: int
    """Parameters of the function: the statement's number, then the slots."""
    layout: Mapping[str, tuple[int, tuple[int, ...]]]
    """Per SQL text: its number and, per parameter, the (0-based) row position."""

    @property
    def call(self) -> str:
        params = ", ".join(f"${i}" for i in range(1, self.width + 1))
        return f"SELECT {self.name}({params})"

    def row(self, sql: str, args: Sequence[Any]) -> list[Any] | None:
        """The call's arguments for one statement; None if the statement is unknown."""
        entry = self.layout.get(sql)
        if entry is None:
            return None
        which, positions = entry
        row: list[Any] = [None] * self.width
        row[0] = which
        for position, value in zip(positions, args, strict=True):
            row[position] = value
        return row

    async def run(self, conn: asyncpg.Connection, rows: list[list[Any]]) -> None:
        """Run the statements behind ``rows`` in order, in one round trip."""
        if rows:
            await conn.executemany(self.call, rows)
            rows.clear()


def dispatch_function(
    statements: Sequence[str], parameter_types: Sequence[Sequence[str]]
) -> tuple[str, str, int, dict[str, tuple[int, tuple[int, ...]]]]:
    """``(name, CREATE FUNCTION text, width, layout)`` for ``statements`` whose
    parameters have ``parameter_types`` (SQL type names, as ``format_type`` gives them).

    Pure, so it can be tested without a database."""
    slots: dict[str, int] = {}  # type -> how many slots of that type
    for types in parameter_types:
        for name in set(types):
            slots[name] = max(slots.get(name, 0), types.count(name))
    first: dict[str, int] = {}  # type -> its first slot's parameter number
    number = 2  # $1 says which statement
    for name in sorted(slots):
        first[name] = number
        number += slots[name]
    width = number - 1
    if width > MAX_PARAMETERS:
        raise ValueError(f"planned statements need {width} parameters, over {MAX_PARAMETERS}")
    arms: list[str] = []
    layout: dict[str, tuple[int, tuple[int, ...]]] = {}
    for which, (sql, types) in enumerate(zip(statements, parameter_types, strict=True)):
        seen: dict[str, int] = {}
        numbers: list[int] = []
        for name in types:
            numbers.append(first[name] + seen.get(name, 0))
            seen[name] = seen.get(name, 0) + 1
        if _QUOTE in sql or _dollar_in_literal(sql):
            raise ValueError(f"a planned statement has a $ in a quoted string: {sql[:80]}")

        def renumbered(m: re.Match[str], numbers: list[int] = numbers) -> str:
            return f"${numbers[int(m.group(1)) - 1]}"

        body = _PARAM.sub(renumbered, sql.strip())
        arms.append(f"  WHEN {which} THEN\n{body}\n  ;")  # a body may end in a comment
        layout[sql] = (which, tuple(n - 1 for n in numbers))
    signature = ", ".join(
        ["integer"] + [name for name in sorted(slots) for _ in range(slots[name])]
    )
    text = (
        f"({signature}) RETURNS void LANGUAGE plpgsql AS {_QUOTE}\nBEGIN\nCASE $1\n"
        + "\n".join(arms)
        + f"\nEND CASE;\nEND\n{_QUOTE}"
    )
    name = "lf_apply_" + hashlib.sha256(text.encode()).hexdigest()[:16]
    return name, f"CREATE FUNCTION {name}{text}", width, layout


async def install(
    conn: asyncpg.Connection, statements: Iterable[str] | None = None
) -> Dispatcher | None:
    """Create (if missing) the dispatch function for ``statements`` (default: every
    registered planned statement) in the schema first on the connection's
    ``search_path``; None when there is nothing to dispatch."""
    ordered = sorted(set(registered_statements() if statements is None else statements))
    if not ordered:
        return None
    oids: list[list[int]] = []
    for sql in ordered:
        prepared = await conn.prepare(sql)
        oids.append([t.oid for t in prepared.get_parameters()])
    names = dict(
        await conn.fetch(
            "SELECT o, format_type(o, NULL) FROM unnest($1::oid[]) AS o",
            sorted({o for types in oids for o in types}),
        )
    )
    name, create, width, layout = dispatch_function(
        ordered, [[names[o] for o in types] for types in oids]
    )
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", DISPATCH_LOCK)
        exists = await conn.fetchval(
            "SELECT 1 FROM pg_proc WHERE proname = $1"
            " AND pronamespace = current_schema()::regnamespace",
            name,
        )
        if not exists:
            await conn.execute(create)
    return Dispatcher(name=name, width=width, layout=layout)
