"""The projector: reads every event topic and writes the Postgres projection.

Offsets live in Postgres, never in Kafka (aiokafka's "saving offsets outside Kafka";
eventsourcing's tracking table): each batch's rows and the ``(topic, partition, next
offset)`` it reached are written in one transaction, and the consumer seeks to the stored
offsets at start. The consumer has no group and assigns itself every partition.

Each batch reads back (``FOR UPDATE``) the stored offsets of its partitions, in the
round trip that stores its raw events. If they differ from what the projector last
wrote, someone else moved them (a second projector, or a rebuild swapped the schema):
the transaction is rolled back and the batch redone the careful way, which seeks back to
the stored offset and drops the batch for that partition, so nothing is skipped and
nothing is applied twice. Records below the stored offset are skipped; event ids dedupe
the rest.

A batch is what was fetched (up to about :data:`MAX_BATCH_RECORDS`), all partitions
together, in ONE transaction of three or four round trips: begin and lock (left out when
the commit before began this transaction: see :meth:`Projector._commit`), the raw events
and the stored offsets, then every planned statement and the new offsets in one
``executemany`` of the dispatch function (``projection_batch``, ``projection_dispatch``),
commit. While a batch is in Postgres the next one is fetched and prepared
(:meth:`Projector.run`). Under load batches grow, so round trips per event fall; when
idle a batch is a handful of events and the lag is a few round trips' worth.

A malformed message is sent to the dead-letter topic and its offset stored like any
other. When the batch fails on a row constraint it is redone one savepoint per event
(the per-event path); the event that fails again is dead-lettered, so one bad event
cannot stall the projection.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from ledgerflow.api import db, projection_dispatch
from ledgerflow.api.projection import apply_event
from ledgerflow.api.projection_base import Statement, planned_sql
from ledgerflow.api.projection_batch import (
    Prepared,
    apply_events,
    store_raw_reading_offsets,
)
from ledgerflow.api.projector_records import Fetched, prepare_fetched
from ledgerflow.api.topology import partitions_of
from ledgerflow.common.events import Envelope, MalformedMessage
from ledgerflow.common.gc_tuning import tune_gc
from ledgerflow.common.kafka_io import (
    EventProducer,
    consumer_config,
    ensure_topics,
    kafka_client_kwargs,
    traceparent_of,
)
from ledgerflow.common.liveness import instance_id, start_beating
from ledgerflow.common.metrics import ProjectorLag, projected
from ledgerflow.common.settings import Settings

log = logging.getLogger(__name__)

CONSUMER_NAME = "ledgerflow-projector"
MAX_BATCH_RECORDS = 2000
FETCH_AHEAD_PAUSE_S = 0.008
"""While a batch of at least :data:`COALESCE_FROM` events is in Postgres, the pause
before fetching ahead: the records wait for that batch anyway, and under load fewer,
larger batches cost less. Each drained fetch makes aiokafka ask the broker again, and
each batch costs its round trips: at 5,000 events/s a 3 ms pause gave ~180 fetches and
~170 batches a second and 0.46-0.48 cores of projector CPU, an 8 ms pause ~90 and ~87 and
0.39 (lag p50 16-21 against 30 ms; docs/performance.md)."""
COALESCE_FROM = 16
"""Smaller batches (a quiet log) fetch ahead at once: their events' lag is what
read-your-writes waits for, and there is no load to spare."""
ANALYZE_FIRST_AT = 1000
"""Events applied before the projection's tables are first analyzed (then each time
that count doubles: see :meth:`Projector._commit`)."""
ANALYZED = ("dag_runs", "dag_versions", "task_map")
"""Tables a planned statement looks rows up in by key while another index could serve
(one row per run or version, so analyzing them is cheap): a plan made while they were
empty scans every run of a DAG (:meth:`Projector._analyze`). The per-task tables are
looked up only by their primary key or within one run."""
IDLE_ADVANCE_INTERVAL_S = 1.0

_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
)


@dataclass
class BatchResult:
    """What one batch did (for logs, status and tests)."""

    applied: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    resynced: list[TopicPartition] = field(default_factory=list)
    last_time: datetime | None = None
    """The last applied event's time."""


_LOCK_PROJECTION = f"SELECT pg_advisory_xact_lock_shared({db.PROJECTION_WRITE_LOCK})"
_SELECT_OFFSETS = "SELECT topic, kafka_partition, next_offset FROM projector_offsets"
_LOCK_OFFSETS = (
    "SELECT topic, kafka_partition, next_offset FROM projector_offsets"
    " WHERE topic = ANY($1::text[]) FOR UPDATE"
)
_UPSERT_OFFSET = """
INSERT INTO projector_offsets (topic, kafka_partition, next_offset, updated_at)
VALUES ($1, $2, $3, now())
ON CONFLICT (topic, kafka_partition) DO UPDATE
SET next_offset = EXCLUDED.next_offset, updated_at = now()
"""
# Both in one statement (the CTE runs whether or not the main statement reads it), sent
# with the batch's last planned statements (a registered statement: see projection_base).
_STORE_OFFSETS_AND_STATUS = planned_sql("""
WITH stored AS (
    INSERT INTO projector_offsets (topic, kafka_partition, next_offset, updated_at)
    SELECT t, p, o, now() FROM unnest($1::text[], $2::integer[], $3::bigint[]) AS x(t, p, o)
    ON CONFLICT (topic, kafka_partition) DO UPDATE
    SET next_offset = EXCLUDED.next_offset, updated_at = now()
)
INSERT INTO projector_status (id, started_at, updated_at, events_applied, dead_lettered,
                              last_batch_size, last_event_time)
VALUES (1, $4, now(), $5, $6, $7, $8)
ON CONFLICT (id) DO UPDATE SET
    started_at = EXCLUDED.started_at, updated_at = now(),
    events_applied = projector_status.events_applied + EXCLUDED.events_applied,
    dead_lettered = projector_status.dead_lettered + EXCLUDED.dead_lettered,
    last_batch_size = EXCLUDED.last_batch_size,
    last_event_time = COALESCE(EXCLUDED.last_event_time, projector_status.last_event_time)
""")


class Projector:
    """One projector over one schema. ``async with Projector(settings) as p: await p.run()``.

    ``start``/``stop`` are idempotent. :meth:`step` applies one batch; :meth:`catch_up`
    steps until the log's end as it was when called (used by rebuilds and tests).
    """

    def __init__(self, settings: Settings, *, schema: str = db.LIVE_SCHEMA) -> None:
        self._settings = settings
        self.schema = schema
        self._pool: asyncpg.Pool | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: EventProducer | None = None
        self._partitions: list[TopicPartition] = []
        # The next offset we know is stored in Postgres, per partition.
        self._stored: dict[TopicPartition, int] = {}
        self._dispatcher: projection_dispatch.Dispatcher | None = None
        self.max_batch = MAX_BATCH_RECORDS
        """Records one fetch returns at most; no more is fetched ahead while a batch
        this size waits."""
        self._conn: asyncpg.Connection | None = None  # the batches' (see _connection)
        self._begun: asyncpg.Connection | None = None
        """The batch connection when its next transaction is begun already (its COMMIT
        began the next batch's transaction: see :meth:`_commit`)."""
        self._next_ready: Callable[[], bool] = lambda: False
        """Whether another batch is ready to start as soon as this one commits."""
        self.chained_commits = 0
        """Commits that began the next batch's transaction (diagnostics and tests)."""
        self._applied = 0  # events applied by this projector's batches
        self._analyze_at = ANALYZE_FIRST_AT
        self._analyzing: asyncio.Task[None] | None = None
        self.analyses = 0
        """Times the projection's young tables were analyzed (see :meth:`_analyze`)."""
        self._started_at = 0.0
        self._last_idle_advance = 0.0

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        if self._pool is not None:
            return
        await ensure_topics(self._settings)
        self._pool = await db.create_pool(
            self._settings.database_url, schema=self.schema, min_size=1, max_size=3
        )
        async with self._pool.acquire() as conn:
            await db.migrate(conn, self.schema)
            self._dispatcher = await projection_dispatch.install(conn)
        self._producer = EventProducer(self._settings, source="ledgerflow/projector")
        await self._producer.start()
        config = consumer_config(self._settings)
        config.update(
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            client_id=CONSUMER_NAME,
        )
        self._consumer = AIOKafkaConsumer(**config)
        await self._consumer.start()
        admin = AIOKafkaAdminClient(**kafka_client_kwargs(self._settings))
        await admin.start()
        try:
            partitions = await partitions_of(admin, self._settings.topics.event_topics)
        finally:
            await admin.close()
        self._partitions = partitions
        self._consumer.assign(partitions)
        await self._resync()
        self._started_at = time.time()
        log.info("projector started on schema %s with %d partitions", self.schema, len(partitions))

    async def stop(self) -> None:
        analyzing, self._analyzing = self._analyzing, None
        if analyzing is not None:
            analyzing.cancel()
            await asyncio.gather(analyzing, return_exceptions=True)
        consumer, self._consumer = self._consumer, None
        producer, self._producer = self._producer, None
        pool, self._pool = self._pool, None
        conn, self._conn = self._conn, None
        if conn is not None and pool is not None:
            await pool.release(conn)
        if consumer is not None:
            await consumer.stop()
        if producer is not None:
            await producer.stop()
        if pool is not None:
            await pool.close()

    async def __aenter__(self) -> Projector:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def partitions(self) -> Sequence[TopicPartition]:
        return tuple(self._partitions)

    # ------------------------------------------------------------------ running
    async def run(self) -> None:
        """Project until cancelled, riding out Postgres and Kafka outages."""
        backoff = 0.1

        def succeeded() -> None:
            nonlocal backoff
            backoff = 0.1

        while True:
            try:
                await self._run_pipelined(after_batch=succeeded)
            except asyncio.CancelledError:
                raise
            except (*_CONNECTION_ERRORS, KafkaError) as exc:  # retriable: wait and resync
                log.warning("projector: %s; retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                try:
                    await self._resync()
                except (*_CONNECTION_ERRORS, KafkaError) as again:
                    log.warning("projector: resync failed: %s", again)

    async def _run_pipelined(self, *, after_batch: Callable[[], None]) -> None:
        """Fetch and project batch after batch, one transaction at a time, in order.

        While a batch is in Postgres, the records arriving meanwhile are fetched and
        prepared (decoded; rows and statements built: the projector's work that needs
        no database), and they make the next batch as soon as this one commits. So the
        projector's work overlaps Postgres's, and a batch holds what arrived while the
        one before was applied, as when fetching after each commit."""
        ahead = Fetched()  # fetched and prepared, not yet applied
        fetching: asyncio.Task[Fetched] | None = asyncio.create_task(self._fetch(timeout_ms=500))
        applying: asyncio.Task[BatchResult] | None = None
        in_flight = 0  # records in the batch being applied
        self._next_ready = lambda: bool(ahead.records)
        try:
            while True:
                # Each fetch's result is taken exactly once (a record left behind would
                # be skipped: the consumer's position has moved past it).
                waits = {t for t in (fetching, applying) if t is not None}
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                idle = False
                if fetching is not None and fetching.done():
                    fetched = fetching.result()
                    fetching = None
                    idle = not fetched.records
                    ahead.extend(fetched)
                if applying is not None and applying.done():
                    result = applying.result()
                    applying = None
                    after_batch()
                    if result.resynced:
                        # What was fetched of those partitions before the seek is stale.
                        if fetching is not None:
                            ahead.extend(await fetching)
                            fetching = None
                        ahead = ahead.without(result.resynced)
                        self._seek(result.resynced)
                if applying is None and ahead.records:
                    applying = asyncio.create_task(self._apply(ahead))
                    in_flight = ahead.size
                    ahead = Fetched()
                elif applying is None and self._begun is not None:
                    # The batch its transaction was begun for is gone (a seek dropped it).
                    await self._end_begun()
                elif applying is None and idle:
                    # Nothing fetched, nothing in flight: positions are all projected.
                    await self._advance_idle()
                if fetching is None and ahead.size < self.max_batch:
                    coalesce = applying is not None and in_flight >= COALESCE_FROM
                    pause = FETCH_AHEAD_PAUSE_S if coalesce else 0.0
                    fetching = asyncio.create_task(self._fetch(timeout_ms=500, pause_s=pause))
        finally:
            self._next_ready = lambda: False
            tasks = [t for t in (fetching, applying) if t is not None]
            for task in tasks:
                task.cancel()
            # A cancelled batch rolls back (or closes its connection) before we go on.
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._end_begun()

    async def catch_up(self, *, within_s: float = 60.0) -> None:
        """Step until every partition has reached the end offset it had when called."""
        consumer = self._require_consumer()
        ends: Mapping[TopicPartition, int] = await consumer.end_offsets(self._partitions)
        deadline = time.monotonic() + within_s
        while any(self._stored.get(tp, 0) < end for tp, end in ends.items()):
            if time.monotonic() > deadline:
                behind = {
                    f"{tp.topic}[{tp.partition}]": (self._stored.get(tp, 0), end)
                    for tp, end in ends.items()
                    if self._stored.get(tp, 0) < end
                }
                raise TimeoutError(f"projector did not catch up: {behind}")
            result = await self.step(timeout_ms=200)
            if result.applied == 0 and result.duplicates == 0 and result.dead_lettered == 0:
                await self._advance_idle(force=True)

    async def step(self, *, timeout_ms: int = 500) -> BatchResult:
        """Fetch what Kafka has (up to a batch) and project it in one transaction."""
        fetched = await self._fetch(timeout_ms=timeout_ms)
        if not fetched.records:
            await self._advance_idle()
            return BatchResult()
        result = await self._apply(fetched)
        self._seek(result.resynced)
        return result

    async def _fetch(self, *, timeout_ms: int, pause_s: float = 0.0) -> Fetched:
        if pause_s:
            await asyncio.sleep(pause_s)
        batch = await self._require_consumer().getmany(
            timeout_ms=timeout_ms, max_records=self.max_batch
        )
        return await prepare_fetched(batch)

    def _seek(self, partitions: list[TopicPartition]) -> None:
        consumer = self._require_consumer()
        for tp in partitions:
            consumer.seek(tp, self._stored[tp])

    async def _apply(self, fetched: Fetched) -> BatchResult:
        try:
            return await self._apply_batch(fetched, careful=False)
        except _OffsetsMoved as exc:
            log.info("projector: %s; redoing the batch the careful way", exc)
            return await self._apply_batch(fetched, careful=True)
        except asyncpg.PostgresError as exc:
            if isinstance(exc, _CONNECTION_ERRORS):
                raise
            if isinstance(exc, asyncpg.UndefinedFunctionError):
                # Perhaps our dispatch function is gone (a rebuild by another version
                # swapped its schema in): install it for the next batches.
                async with self._require_pool().acquire() as conn:
                    self._dispatcher = await projection_dispatch.install(conn)
            # A data problem in some event: redo the batch one savepoint per event.
            log.warning("projector: batch failed (%s); retrying event by event", exc)
            return await self._apply_batch(fetched, careful=True)

    # ------------------------------------------------------------------ internals
    def _require_consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("projector is not started")
        return self._consumer

    def _require_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("projector is not started")
        return self._pool

    async def _resync(self) -> None:
        """Seek every partition to the offset stored in Postgres (or the beginning)."""
        consumer = self._require_consumer()
        async with self._require_pool().acquire() as conn:
            rows = await conn.fetch(_SELECT_OFFSETS)
        stored = {TopicPartition(r["topic"], r["kafka_partition"]): r["next_offset"] for r in rows}
        self._stored = {}
        for tp in self._partitions:
            offset = stored.get(tp, 0)
            self._stored[tp] = offset
            consumer.seek(tp, offset)

    async def _connection(self) -> asyncpg.Connection:
        """The connection batches use: held across batches (a pool's release costs a
        round trip to reset the session), replaced when it breaks."""
        conn = self._conn
        if conn is not None and not conn.is_closed():
            return conn
        pool = self._require_pool()
        self._conn = None
        if conn is not None:
            await pool.release(conn)
        self._conn = await pool.acquire()
        return self._conn

    async def _apply_batch(self, fetched: Fetched, *, careful: bool) -> BatchResult:
        result = BatchResult()
        new_stored: dict[TopicPartition, int] = {}
        conn = await self._connection()
        if careful:
            await self._end_begun(conn)
            async with conn.transaction():
                await conn.execute(_LOCK_PROJECTION)
                items = await self._claim(conn, fetched, result, new_stored)
                await self._project_carefully(conn, items, result)
                sql, args = self._offsets_statement(fetched, result, new_stored)
                await conn.execute(sql, *args)
        else:
            if self._begun is not conn:
                # The simple protocol takes both statements in one round trip.
                await conn.execute(f"BEGIN; {_LOCK_PROJECTION}")
            self._begun = None
            try:
                items, malformed = self._take(fetched, new_stored)
                # The raw events, and the stored offsets: as we last wrote them, unless
                # someone else moved them. Then the batch is redone the careful way,
                # which seeks those partitions back and applies the others.
                new, stored = await store_raw_reading_offsets(
                    conn, [p for p, _ in items], list({tp.topic for tp in fetched.records})
                )
                moved = [
                    tp
                    for tp in fetched.records
                    if stored.get((tp.topic, tp.partition), 0) != self._stored.get(tp, 0)
                ]
                if moved:
                    raise _OffsetsMoved(moved)
                for record, reason in malformed:
                    await self._dead_letter(record, reason)
                result.dead_lettered = len(malformed)
                await apply_events(
                    conn,
                    [p for p, _ in items],
                    self._dispatcher,
                    finish=self._finish(fetched, items, result, new_stored),
                    new=new,
                )
                self._applied += result.applied
                await self._commit(conn)
            except BaseException as exc:
                await _abandon(conn, exc)
                raise
        self._stored.update(new_stored)
        projected(result.last_time)  # for the projector's seconds-behind gauge
        return result

    async def _commit(self, conn: asyncpg.Connection) -> None:
        """Commit the batch. When the next batch is ready (``run`` fetched it meanwhile),
        the same message begins its transaction: one round trip less per batch under
        load. The connection never waits idle in a begun transaction: ``run`` starts
        that batch at once, or ends the transaction (:meth:`_end_begun`). Now and then
        it starts analyzing the young tables (:meth:`_analyze`)."""
        if self._applied >= self._analyze_at and self._analyzing is None:
            self._analyze_at *= 2
            self._analyzing = asyncio.create_task(self._analyze())
        if self._next_ready():
            await conn.execute(f"COMMIT; BEGIN; {_LOCK_PROJECTION}")
            self._begun = conn
            self.chained_commits += 1
        else:
            await conn.execute("COMMIT")

    async def _analyze(self) -> None:
        """Analyze the tables of :data:`ANALYZED`; the statements whose plans read them
        are planned again when next run.

        Postgres plans a statement it runs often once, for the tables as they are then,
        and keeps the plan until their statistics change. A new schema's tables are
        empty and not yet analyzed (the autovacuum daemon looks at a database once a
        minute): planned then, "update the run (dag_id, run_id)" reads the smaller index
        on (dag_id, queued_at) and filters on run_id, every earlier run of the DAG for
        each update. The projector fills its tables fast (a rebuild, a new deployment),
        so it analyzes them itself while they are young: each time the events it applied
        double. On another connection, concurrently with the batches."""
        try:
            async with self._require_pool().acquire() as conn:
                await conn.execute("ANALYZE " + ", ".join(ANALYZED))
            self.analyses += 1
        except (*_CONNECTION_ERRORS, asyncpg.PostgresError) as exc:
            log.warning("projector: analyzing the projection failed: %s", exc)
        finally:
            self._analyzing = None

    async def _end_begun(self, conn: asyncpg.Connection | None = None) -> None:
        """End a transaction begun for a batch that is not coming (it did nothing)."""
        begun, self._begun = self._begun, None
        if begun is not None and (conn is None or begun is conn) and not begun.is_closed():
            try:
                await begun.execute("ROLLBACK")
            except BaseException as exc:
                await _abandon(begun, exc)
                raise

    def _take(
        self, fetched: Fetched, new_stored: dict[TopicPartition, int]
    ) -> tuple[list[tuple[Prepared, Any]], list[tuple[Any, MalformedMessage]]]:
        """The records past the offsets we last stored, and the malformed ones among
        them, with the next offsets they reach (:meth:`_claim` without the database)."""
        items: list[tuple[Prepared, Any]] = []
        malformed: list[tuple[Any, MalformedMessage]] = []
        for tp, records in fetched.records.items():
            stored = self._stored.get(tp, 0)
            next_offset = stored
            for record, prepared in records:
                if record.offset < stored:
                    continue
                next_offset = record.offset + 1
                if isinstance(prepared, MalformedMessage):
                    malformed.append((record, prepared))
                else:
                    items.append((prepared, record))
            if next_offset != stored:
                new_stored[tp] = next_offset
        return items, malformed

    async def _dead_letter(self, record: Any, reason: MalformedMessage) -> None:
        producer = self._producer
        assert producer is not None
        await producer.dead_letter(record, str(reason), consumer=CONSUMER_NAME)

    async def _claim(
        self,
        conn: asyncpg.Connection,
        fetched: Fetched,
        result: BatchResult,
        new_stored: dict[TopicPartition, int],
    ) -> list[tuple[Prepared, Any]]:
        """Lock the batch's stored offsets and take the records past them, sending the
        malformed ones to the dead-letter topic. A partition whose stored offset someone
        else moved is left out and marked for a seek."""
        rows = await conn.fetch(_LOCK_OFFSETS, list({tp.topic for tp in fetched.records}))
        in_db = {TopicPartition(r["topic"], r["kafka_partition"]): r["next_offset"] for r in rows}
        for tp in fetched.records:
            stored = in_db.get(tp, 0)
            if stored != self._stored.get(tp, 0):
                # Someone else moved this partition's offset: start again from theirs.
                log.info(
                    "projector: %s[%s] stored offset moved to %s; seeking",
                    tp.topic,
                    tp.partition,
                    stored,
                )
                new_stored[tp] = stored
                result.resynced.append(tp)
        items, malformed = self._take(fetched.without(result.resynced), new_stored)
        for record, reason in malformed:
            await self._dead_letter(record, reason)
        result.dead_lettered += len(malformed)
        return items

    def _finish(
        self,
        fetched: Fetched,
        items: list[tuple[Prepared, Any]],
        result: BatchResult,
        new_stored: dict[TopicPartition, int],
    ) -> Callable[[list[bool]], Statement]:
        """The fast path's last statement, given which items were new: it counts them
        and stores the offsets reached and the status row."""

        def statement(new: list[bool]) -> Statement:
            for (prepared, _), is_new in zip(items, new, strict=True):
                if is_new:
                    result.applied += 1
                    result.last_time = prepared.delivered.envelope.time
                else:
                    result.duplicates += 1
            return self._offsets_statement(fetched, result, new_stored)

        return statement

    def _offsets_statement(
        self, fetched: Fetched, result: BatchResult, new_stored: dict[TopicPartition, int]
    ) -> Statement:
        moved = {tp: o for tp, o in new_stored.items() if tp not in result.resynced}
        return _STORE_OFFSETS_AND_STATUS, (
            [tp.topic for tp in moved],
            [tp.partition for tp in moved],
            list(moved.values()),
            _utc(self._started_at),
            result.applied,
            result.dead_lettered,
            fetched.size,
            result.last_time,
        )

    async def _project_carefully(
        self, conn: asyncpg.Connection, items: list[tuple[Prepared, Any]], result: BatchResult
    ) -> None:
        """Project the decoded events one savepoint each, dead-lettering what the
        database refuses."""
        for prepared, record in items:
            envelope = prepared.delivered.envelope
            outcome = await self._apply_one(conn, envelope, record)
            if outcome is None:
                result.dead_lettered += 1
            elif outcome:
                result.applied += 1
                result.last_time = envelope.time
            else:
                result.duplicates += 1

    async def _apply_one(
        self, conn: asyncpg.Connection, envelope: Envelope, record: Any
    ) -> bool | None:
        """Apply one event inside a savepoint, dead-lettering it if the database refuses
        it. Returns None when dead-lettered, else whether the event was new."""
        try:
            async with conn.transaction():
                applied: bool = await apply_event(
                    conn,
                    envelope,
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    traceparent=traceparent_of(record),
                )
                return applied
        except asyncpg.PostgresError as exc:
            if isinstance(exc, _CONNECTION_ERRORS):
                raise
            assert self._producer is not None
            await self._producer.dead_letter(
                record, f"projection refused the event: {exc}", consumer=CONSUMER_NAME
            )
            return None

    async def _advance_idle(self, *, force: bool = False) -> None:
        """Store consumer positions that moved past offsets holding no records.

        Transaction markers and aborted records take offsets but are never returned by
        ``getmany``; without this the stored offsets would trail the log's end forever.
        """
        now = time.monotonic()
        if not force and now - self._last_idle_advance < IDLE_ADVANCE_INTERVAL_S:
            return
        self._last_idle_advance = now
        consumer = self._require_consumer()
        moved: dict[TopicPartition, int] = {}
        for tp in self._partitions:
            position = await consumer.position(tp)
            if position > self._stored.get(tp, 0):
                moved[tp] = position
        if not moved:
            return
        async with self._require_pool().acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", db.PROJECTION_WRITE_LOCK)
            rows = await conn.fetch(_LOCK_OFFSETS, list({tp.topic for tp in moved}))
            in_db = {
                TopicPartition(r["topic"], r["kafka_partition"]): r["next_offset"] for r in rows
            }
            for tp, position in moved.items():
                if in_db.get(tp, 0) != self._stored.get(tp, 0):
                    continue  # moved by someone else; the next batch resyncs
                await conn.execute(_UPSERT_OFFSET, tp.topic, tp.partition, position)
                self._stored[tp] = position


class _OffsetsMoved(Exception):
    """Someone else stored offsets of these partitions since we last did."""

    def __init__(self, partitions: list[TopicPartition]) -> None:
        names = ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions)
        super().__init__(f"stored offsets moved under us: {names}")
        self.partitions = partitions


async def _abandon(conn: asyncpg.Connection, exc: BaseException) -> None:
    """End a failed batch's transaction. A cancelled or broken connection is closed
    instead (its state is unknown; :meth:`Projector._connection` replaces it)."""
    if conn.is_closed():
        return
    if isinstance(exc, (asyncio.CancelledError, *_CONNECTION_ERRORS)):
        conn.terminate()
        return
    try:
        await conn.execute("ROLLBACK")
    except Exception:  # noqa: BLE001  (any failure here: the connection is not usable)
        conn.terminate()


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


async def rebuild_projection(settings: Settings, *, within_s: float = 3600.0) -> None:
    """Replay the whole log into a fresh schema, then swap it in as the live one."""
    setup = await db.create_pool(settings.database_url, schema=db.REBUILD_SCHEMA, max_size=1)
    try:
        async with setup.acquire() as conn:
            await db.drop_schema(conn, db.REBUILD_SCHEMA)
    finally:
        await setup.close()
    log.info("rebuild: replaying the log into schema %s", db.REBUILD_SCHEMA)
    async with Projector(settings, schema=db.REBUILD_SCHEMA) as builder:
        await builder.catch_up(within_s=within_s)
    swap = await db.create_pool(settings.database_url, schema=db.LIVE_SCHEMA, max_size=1)
    try:
        async with swap.acquire() as conn:
            await db.swap_schemas(conn, new=db.REBUILD_SCHEMA, live=db.LIVE_SCHEMA)
    finally:
        await swap.close()
    log.info("rebuild: schema %s is now the live projection", db.LIVE_SCHEMA)


async def run(settings: Settings, *, rebuild: bool = False) -> None:
    """Entry point (``ledgerflow projector [--rebuild]``): project until cancelled.

    With ``rebuild=True`` the whole log is first replayed into a fresh schema which then
    replaces the live one; projection then carries on from there.
    """
    if rebuild:
        await rebuild_projection(settings)
    async with Projector(settings) as projector:
        tune_gc()
        assert projector._producer is not None
        beating = start_beating(
            settings,
            projector._producer,
            service="projector",
            instance=instance_id("projector"),
            details=lambda: {"schema": projector.schema},
        )
        lag = ProjectorLag(  # events behind: end offsets - the offsets stored in Postgres
            projector._require_consumer(),
            CONSUMER_NAME,
            consumed=lambda tp: projector._stored.get(tp, 0),
            partitions=lambda: projector.partitions,
        ).start()
        try:
            await projector.run()
        finally:
            beating.cancel()
            await lag.stop()
