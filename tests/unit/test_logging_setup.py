"""Service logs: JSON lines with the fields log shippers need, trace ids inside a span,
text on a terminal, and the format and level from the environment."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from ledgerflow.common.logging_setup import configure_logging, resolve_format
from opentelemetry.sdk.trace import TracerProvider


@pytest.fixture(autouse=True)
def _restore_root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_fields_outside_a_span() -> None:
    stream = io.StringIO()
    configure_logging("executor", stream=stream, environ={})
    logging.getLogger("ledgerflow.x").warning("slot %d free", 3, extra={"queue": "gpu"})
    [record] = _lines(stream)
    assert record["message"] == "slot 3 free"
    assert (record["level"], record["logger"], record["service"]) == (
        "warning",
        "ledgerflow.x",
        "executor",
    )
    assert record["queue"] == "gpu"
    assert str(record["timestamp"]).endswith("+00:00")
    assert "trace_id" not in record and "span_id" not in record


def test_json_carries_the_active_span_ids() -> None:
    stream = io.StringIO()
    configure_logging("scheduler", stream=stream, environ={})
    tracer = TracerProvider().get_tracer("test")  # not installed globally: not needed
    with tracer.start_as_current_span("decide") as span:
        logging.getLogger("ledgerflow.s").info("inside")
        ctx = span.get_span_context()
    logging.getLogger("ledgerflow.s").info("after")
    inside, after = _lines(stream)
    assert inside["trace_id"] == format(ctx.trace_id, "032x")
    assert inside["span_id"] == format(ctx.span_id, "016x")
    assert len(str(inside["trace_id"])) == 32 and len(str(inside["span_id"])) == 16
    assert "trace_id" not in after


def test_exceptions_are_one_json_line() -> None:
    stream = io.StringIO()
    configure_logging("api", stream=stream, environ={})
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("ledgerflow.a").exception("failed")
    [record] = _lines(stream)
    assert "RuntimeError: boom" in str(record["exc"])


def test_format_and_level_from_the_environment() -> None:
    tty = _Tty()
    configure_logging("ui", stream=tty, environ={"LEDGERFLOW_LOG_FORMAT": "json"})
    logging.getLogger("ledgerflow.u").info("json even on a terminal")
    assert json.loads(tty.getvalue())["service"] == "ui"

    text = io.StringIO()
    env = {"LEDGERFLOW_LOG_FORMAT": "text", "LEDGERFLOW_LOG_LEVEL": "warning"}
    configure_logging("ui", stream=text, environ=env)
    logging.getLogger("ledgerflow.u").info("dropped")
    with TracerProvider().get_tracer("t").start_as_current_span("s") as span:
        logging.getLogger("ledgerflow.u").warning("kept")
    line = text.getvalue()
    assert "dropped" not in line
    assert "WARNING ui ledgerflow.u: kept" in line
    assert f"[trace {format(span.get_span_context().trace_id, '032x')}" in line


def test_auto_means_text_on_a_terminal_only() -> None:
    assert resolve_format("auto", _Tty()) == "text"
    assert resolve_format(None, io.StringIO()) == "json"
    with pytest.raises(ValueError, match="LEDGERFLOW_LOG_FORMAT"):
        resolve_format("xml", io.StringIO())
    with pytest.raises(ValueError, match="LEDGERFLOW_LOG_LEVEL"):
        configure_logging("x", stream=io.StringIO(), environ={"LEDGERFLOW_LOG_LEVEL": "loud"})
