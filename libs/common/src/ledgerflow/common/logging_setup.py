"""Process-wide logging for every ledgerflow service: one function, :func:`configure_logging`.

JSON lines (one object per record) for log shippers, or readable text for a person:
``LEDGERFLOW_LOG_FORMAT`` is ``json``, ``text`` or ``auto`` (the default: text when
stderr is a terminal, JSON otherwise, so containers and ``standalone``'s children log
JSON). ``LEDGERFLOW_LOG_LEVEL`` sets the level (default INFO).

Each JSON line has ``timestamp`` (UTC, ISO 8601), ``level``, ``logger``, ``message``,
``service``, the record's ``extra=`` fields, ``exc`` (a traceback) when there is one, and
``trace_id``/``span_id`` (hex, as in W3C ``traceparent``) when an OpenTelemetry span is
active, so a log line finds its trace and a trace finds its logs. The ids come from
``opentelemetry.trace.get_current_span()``: with no tracer provider configured there is
no valid span and the fields are simply absent.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import IO, Any, Literal

from opentelemetry import trace

LogFormat = Literal["json", "text", "auto"]
LOG_FORMATS: tuple[str, ...] = ("json", "text", "auto")

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
) | {"message", "asctime", "taskName", "trace_id", "span_id"}

# Libraries that log every request or heartbeat at INFO.
_NOISY_LOGGERS = ("aiokafka", "kafka", "httpx", "httpcore", "asyncio")


def current_trace_ids() -> tuple[str, str] | None:
    """``(trace_id, span_id)`` of the active span in hex, or None when there is none."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


class TraceContextFilter(logging.Filter):
    """Puts ``trace_id``/``span_id`` on each record (empty strings without a span).

    A filter on the handler runs in the thread and context that logged the record, which
    is where the active span is known.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        ids = current_trace_ids()
        record.trace_id, record.span_id = ids if ids is not None else ("", "")
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line (see the module docstring for the fields)."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "service": self.service,
        }
        trace_id = getattr(record, "trace_id", None)
        if trace_id is None:  # formatted without the filter (e.g. a test's handler)
            ids = current_trace_ids()
            trace_id, span_id = ids if ids is not None else ("", "")
        else:
            span_id = getattr(record, "span_id", "")
        if trace_id:
            data["trace_id"] = trace_id
            data["span_id"] = span_id
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_") and key not in data:
                data[key] = value
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["exc"] = record.exc_text
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        return json.dumps(data, default=str)


class TextFormatter(logging.Formatter):
    """``12:00:00 INFO    scheduler ledgerflow.x: message [trace 4bf9…]`` for a terminal."""

    def __init__(self, service: str) -> None:
        super().__init__(
            f"%(asctime)s %(levelname)-7s {service} %(name)s: %(message)s", datefmt="%H:%M:%S"
        )

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        trace_id = getattr(record, "trace_id", "")
        if trace_id:
            first, sep, rest = line.partition("\n")
            line = f"{first} [trace {trace_id} span {getattr(record, 'span_id', '')}]{sep}{rest}"
        return line


def resolve_format(fmt: str | None, stream: IO[str]) -> Literal["json", "text"]:
    """``json`` or ``text`` for ``fmt`` (``auto``/None: text only on a terminal)."""
    chosen = (fmt or "auto").strip().lower()
    if chosen not in LOG_FORMATS:
        raise ValueError(f"LEDGERFLOW_LOG_FORMAT={fmt!r}: use one of {', '.join(LOG_FORMATS)}")
    if chosen == "auto":
        is_tty = hasattr(stream, "isatty") and stream.isatty()
        return "text" if is_tty else "json"
    return "json" if chosen == "json" else "text"


def configure_logging(
    service: str,
    *,
    stream: IO[str] | None = None,
    fmt: str | None = None,
    level: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> logging.Handler:
    """Send all logging to ``stream`` (stderr), as JSON lines or text, for ``service``.

    ``fmt`` and ``level`` default to ``LEDGERFLOW_LOG_FORMAT`` and
    ``LEDGERFLOW_LOG_LEVEL``. Replaces the root logger's handlers (calling it twice is
    harmless) and quiets libraries that log every request at INFO. Returns the handler.
    """
    env = os.environ if environ is None else environ
    stream = stream if stream is not None else sys.stderr
    chosen = resolve_format(fmt if fmt is not None else env.get("LEDGERFLOW_LOG_FORMAT"), stream)
    level_name = (level or env.get("LEDGERFLOW_LOG_LEVEL") or "INFO").strip().upper()
    if not isinstance(logging.getLevelName(level_name), int):
        raise ValueError(
            f"LEDGERFLOW_LOG_LEVEL={level_name!r}: use DEBUG, INFO, WARNING, ERROR or CRITICAL"
        )
    handler = logging.StreamHandler(stream)
    handler.addFilter(TraceContextFilter())
    handler.setFormatter(JsonFormatter(service) if chosen == "json" else TextFormatter(service))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level_name)
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    # uvicorn's loggers keep their own handlers unless told otherwise: send them to ours.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    return handler


__all__ = [
    "JsonFormatter",
    "LOG_FORMATS",
    "TextFormatter",
    "TraceContextFilter",
    "configure_logging",
    "current_trace_ids",
    "resolve_format",
]
