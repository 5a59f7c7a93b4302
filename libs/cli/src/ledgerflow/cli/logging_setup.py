"""Process-wide logging for the services the CLI runs.

JSON lines when stderr is not a terminal (containers, log files, ``standalone``'s
children), so log shippers can parse them; readable text on a terminal.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import IO, Any

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
) | {"message", "asctime", "taskName"}

# Libraries that log every request or heartbeat at INFO.
_NOISY_LOGGERS = ("aiokafka", "kafka", "httpx", "httpcore", "asyncio")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, service, logger, msg, extras, exc."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def configure_logging(service: str, *, stream: IO[str] | None = None) -> None:
    """Send all logging to ``stream`` (stderr), formatted for a machine or a person.

    The level comes from ``LEDGERFLOW_LOG_LEVEL`` (default INFO).
    """
    stream = stream if stream is not None else sys.stderr
    handler = logging.StreamHandler(stream)
    is_tty = hasattr(stream, "isatty") and stream.isatty()
    if is_tty:
        handler.setFormatter(
            logging.Formatter(
                f"%(asctime)s %(levelname)-7s {service} %(name)s: %(message)s",
                datefmt="%H:%M:%S",
            )
        )
    else:
        handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(os.environ.get("LEDGERFLOW_LOG_LEVEL", "INFO").upper())
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
