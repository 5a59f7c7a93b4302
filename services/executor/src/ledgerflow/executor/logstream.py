"""Streams one attempt's output to the log topic as ordered ``TaskLogChunk`` messages.

Lines are sent as they come: a chunk goes out when 100 lines are buffered, when the
chunk grows past ~256 KiB, or 50 ms after its first line, whichever is first; whatever
is left goes out as the final chunk. Chunks share one Kafka key (the attempt key), so
they stay in order on one partition. Each attempt may write at most ``cap_bytes``;
past that, one "system" line says so and the rest is dropped.

Every line passes through ``mask`` first (the executor's
:meth:`~ledgerflow.executor.config_cache.ConfigCache.mask`), so connection passwords and
secret variable values reach the log topic as ``***`` (ADR 0006).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from ledgerflow.common.events import (
    LogLine,
    RunTaskAttempt,
    TaskLogChunk,
    deterministic_id,
    make_envelope,
)
from ledgerflow.common.topics import attempt_key

log = logging.getLogger(__name__)

Stream = Literal["stdout", "stderr", "system"]

DEFAULT_CAP_BYTES = 10 * 1024 * 1024
MAX_LINE_CHARS = 64 * 1024
FLUSH_LINES = 100
FLUSH_BYTES = 256 * 1024
FLUSH_DELAY_S = 0.05


def _now() -> datetime:
    return datetime.now(UTC)


class AttemptLogStream:
    """Buffers an attempt's log lines and sends them in chunks.

    ``producer`` needs ``send_soon(topic, envelope, key=..., traceparent=...)`` (an
    :class:`~ledgerflow.common.kafka_io.EventProducer`). ``write`` is synchronous so the
    output pumps never wait on Kafka; sends happen in the background, in order.
    ``mask`` rewrites each line before anything else sees it (secrets -> ``***``).
    """

    def __init__(
        self,
        producer: Any,
        topic: str,
        item: RunTaskAttempt,
        *,
        source: str,
        causation_id: str | None,
        traceparent: str | None = None,
        cap_bytes: int = DEFAULT_CAP_BYTES,
        clock: Callable[[], datetime] = _now,
        mask: Callable[[str], str] | None = None,
    ) -> None:
        self._producer = producer
        self._mask = mask
        self._topic = topic
        self._item = item
        self._source = source
        self._causation_id = causation_id
        self._traceparent = traceparent
        self._cap = cap_bytes
        self._clock = clock
        self._key = attempt_key(
            item.dag_id, item.run_id, item.task_id, item.map_index, item.try_number
        )
        self._buffer: list[LogLine] = []
        self._buffer_bytes = 0
        self._written = 0
        self._dropped = 0
        self._capped = False
        self._chunk = 0
        self._timer: asyncio.TimerHandle | None = None
        # Chunks are enqueued by one sender task, strictly in order.
        self._outbox: asyncio.Queue[TaskLogChunk | None] = asyncio.Queue()
        self._sender = asyncio.get_running_loop().create_task(self._send_loop())
        self._closed = False

    @property
    def bytes_written(self) -> int:
        return self._written

    @property
    def bytes_dropped(self) -> int:
        return self._dropped

    def write(self, stream: Stream, text: str) -> None:
        """Add one line (without its newline), masked. Long lines are split (after
        masking, so a secret across the split is still caught)."""
        if self._closed:
            return
        if self._mask is not None:
            text = self._mask(text)
        if len(text) > MAX_LINE_CHARS:
            for i in range(0, len(text), MAX_LINE_CHARS):
                self._write(stream, text[i : i + MAX_LINE_CHARS])
            return
        self._write(stream, text)

    def _write(self, stream: Stream, text: str) -> None:
        size = len(text.encode("utf-8", errors="replace")) + 1
        if stream != "system":
            if self._capped:
                self._dropped += size
                return
            if self._written + size > self._cap:
                self._capped = True
                self._dropped += size
                self._append(
                    "system",
                    f"log output reached the cap of {self._cap} bytes for this attempt; "
                    "the rest of the output is dropped",
                )
                return
            self._written += size
        self._append(stream, text)

    def _append(self, stream: Stream, text: str) -> None:
        self._buffer.append(LogLine(ts=self._clock(), stream=stream, text=text))
        self._buffer_bytes += len(text) + 64
        if len(self._buffer) >= FLUSH_LINES or self._buffer_bytes >= FLUSH_BYTES:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_DELAY_S, self.flush)

    def flush(self) -> None:
        """Turn the buffered lines into a chunk and queue it for sending."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._buffer:
            return
        item = self._item
        chunk = TaskLogChunk(
            dag_id=item.dag_id,
            run_id=item.run_id,
            task_id=item.task_id,
            map_index=item.map_index,
            try_number=item.try_number,
            chunk=self._chunk,
            lines=tuple(self._buffer),
        )
        self._chunk += 1
        self._buffer = []
        self._buffer_bytes = 0
        self._outbox.put_nowait(chunk)

    async def _send_loop(self) -> None:
        pending: list[asyncio.Future[Any]] = []
        while True:
            chunk = await self._outbox.get()
            if chunk is None:
                break
            envelope = make_envelope(
                chunk,
                id=deterministic_id(
                    "TaskLogChunk",
                    chunk.dag_id,
                    chunk.run_id,
                    chunk.task_id,
                    chunk.map_index,
                    chunk.try_number,
                    chunk.chunk,
                ),
                source=self._source,
                time=chunk.lines[-1].ts,
                aggregate_key=chunk.dag_id,
                sequence=chunk.chunk,
                correlation_id=chunk.run_id,
                causation_id=self._causation_id,
            )
            try:
                fut = await self._producer.send_soon(
                    self._topic, envelope, key=self._key, traceparent=self._traceparent
                )
                pending.append(fut)
            except Exception:
                log.exception("could not send log chunk %s of %s", chunk.chunk, self._key)
        results = await asyncio.gather(*pending, return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                log.warning("a log chunk of %s was not acknowledged: %r", self._key, r)

    async def close(self) -> None:
        """Send the final chunk and wait until every chunk is acknowledged (or failed)."""
        if not self._closed:
            if self._capped and self._dropped:
                self._append("system", f"{self._dropped} bytes of output were dropped")
            self.flush()
            self._closed = True
            self._outbox.put_nowait(None)
        await asyncio.shield(self._sender)
