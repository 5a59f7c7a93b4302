"""The audit log: reads of the ``event_logs`` view over the raw event store (0005).

Every projected event except log chunks is an entry; ``owner`` is who caused it (a
username or ``apikey:<name>``), ``NULL`` for what the services decided themselves.
``extra`` is the payload as JSON text without secrets and bulky fields (ciphertext,
hashes, DAG source and structure), plus the event id, source and Kafka key.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from ledgerflow.api.config_store import order_clause
from ledgerflow.common.secrets import redact

ORDERINGS = {
    "id": "event_log_id",
    "event_log_id": "event_log_id",
    "dttm": '"when"',
    "when": '"when"',
    "dag_id": "dag_id",
    "task_id": "task_id",
    "run_id": "run_id",
    "event": "event",
    "logical_date": "logical_date",
    "owner": "owner",
    "map_index": "map_index",
    "try_number": "try_number",
}

# Payload fields never shown in ``extra``: secrets (ciphertext and hashes are still not
# for reading) and bulk (DAG source and structure, XCom values, rendered fields).
HIDDEN_FIELDS = frozenset(
    {
        "value",
        "password",
        "extra",
        "password_hash",
        "secret_hash",
        "source_code",
        "dag",
        "extra_files",
        "return_value",
        "xcoms",
        "rendered_fields",
        "lines",
    }
)
_COLUMNS_IN_ENTRY = frozenset(
    {"dag_id", "task_id", "run_id", "map_index", "try_number", "logical_date", "type"}
)


@dataclass(frozen=True)
class EventLogFilter:
    dag_id: str | None = None
    task_id: str | None = None
    run_id: str | None = None
    map_index: int | None = None
    try_number: int | None = None
    event: str | None = None
    owner: str | None = None
    before: datetime | None = None
    after: datetime | None = None
    included_events: Sequence[str] | None = None
    excluded_events: Sequence[str] | None = None
    dag_id_pattern: str | None = None
    task_id_pattern: str | None = None
    run_id_pattern: str | None = None
    owner_pattern: str | None = None
    event_pattern: str | None = None

    def where(self) -> tuple[str, list[Any]]:
        terms: list[str] = []
        args: list[Any] = []

        def add(sql: str, value: Any) -> None:
            args.append(value)
            terms.append(sql.format(f"${len(args)}"))

        for column in ("dag_id", "task_id", "run_id", "map_index", "try_number", "event", "owner"):
            value = getattr(self, column)
            if value is not None:
                add(f"{column} = {{}}", value)
        if self.before is not None:
            add('"when" < {}', self.before)
        if self.after is not None:
            add('"when" > {}', self.after)
        if self.included_events:
            add("event = ANY({}::text[])", list(self.included_events))
        if self.excluded_events:
            add("NOT (event = ANY({}::text[]))", list(self.excluded_events))
        for column in ("dag_id", "task_id", "run_id", "owner", "event"):
            pattern = getattr(self, f"{column}_pattern")
            if pattern:
                add(f"{column} ILIKE {{}}", f"%{pattern}%")
        return ("WHERE " + " AND ".join(terms)) if terms else "", args


def extra_of(row: asyncpg.Record) -> str:
    data = row["data"] or {}
    shown = {k: v for k, v in data.items() if k not in HIDDEN_FIELDS and k not in _COLUMNS_IN_ENTRY}
    # Sensitive names inside what is left (a ``conf`` key named ``password``) are masked.
    shown = redact(shown)
    shown.update(event_id=row["event_id"], source=row["source"], key=row["aggregate_key"])
    return json.dumps(shown, sort_keys=True, default=str)


async def list_entries(
    conn: asyncpg.Connection,
    filters: EventLogFilter,
    *,
    limit: int,
    offset: int,
    order_by: Sequence[str],
) -> tuple[list[asyncpg.Record], int]:
    where, args = filters.where()
    order = order_clause(order_by, ORDERINGS, "event_log_id")
    total = await conn.fetchval(f"SELECT count(*) FROM event_logs {where}", *args)
    n = len(args)
    rows = await conn.fetch(
        f"SELECT * FROM event_logs {where} ORDER BY {order} LIMIT ${n + 1} OFFSET ${n + 2}",
        *args,
        limit,
        offset,
    )
    return list(rows), int(total)


async def get_entry(conn: asyncpg.Connection, event_log_id: int) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT * FROM event_logs WHERE event_log_id = $1", event_log_id
    )
    return row
