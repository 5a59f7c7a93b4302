"""Service commands: a signal becomes cancellation and a clean exit; logging format."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal

import pytest
from ledgerflow.cli.logging_setup import configure_logging
from ledgerflow.cli.service_runner import run_service


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_cancels_the_service_and_exits_0(signum: signal.Signals) -> None:
    cleaned_up = []

    async def service() -> None:
        asyncio.get_running_loop().call_later(0.05, os.kill, os.getpid(), signum)
        try:
            await asyncio.Event().wait()
        finally:
            cleaned_up.append(True)

    assert run_service("fake", service) == 0
    assert cleaned_up == [True]


def test_a_failing_service_exits_1(caplog: pytest.LogCaptureFixture) -> None:
    async def service() -> None:
        raise RuntimeError("broker gone")

    assert run_service("fake", service) == 1
    assert "fake: failed" in caplog.text


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_json_lines_when_not_a_terminal() -> None:
    stream = io.StringIO()
    configure_logging("scheduler", stream=stream)
    logging.getLogger("ledgerflow.test").info("run %s queued", "r1", extra={"dag_id": "etl"})
    record = json.loads(stream.getvalue())
    assert record["message"] == "run r1 queued"
    assert (record["level"], record["service"], record["dag_id"]) == ("info", "scheduler", "etl")
    assert record["timestamp"].endswith("+00:00")


def test_text_on_a_terminal() -> None:
    stream = _Tty()
    configure_logging("ui", stream=stream)
    logging.getLogger("ledgerflow.test").warning("hello")
    line = stream.getvalue()
    assert "WARNING" in line and "ui ledgerflow.test: hello" in line
    assert not line.startswith("{")
