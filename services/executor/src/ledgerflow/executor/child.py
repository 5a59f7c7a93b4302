"""Runs one task attempt in a child process and turns how it ended into an outcome.

Protocol (docs/CONTRACTS-dev.md, "Task runner"): the attempt's JSON payload goes to the
child's stdin; the task writes to stdout/stderr, which are read line by line as they
come; the runner writes one JSON outcome line to fd 3. A child that dies without an
outcome fails the attempt with its exit code or signal.

The child starts in its own session (process group), so a timeout or a shutdown can
kill the task together with anything it spawned. It gets a copy of the executor's
environment without the executor's secrets.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

log = logging.getLogger(__name__)

OUTCOME_FD = 3
RUNNER_ARGV: tuple[str, ...] = (sys.executable, "-m", "ledgerflow.sdk.runner")

# Environment variables the task must never see: the executor's own secrets.
SECRET_ENV_VARS = frozenset(
    {"LEDGERFLOW_ADMIN_PASSWORD", "LEDGERFLOW_SECRET_KEY", "LEDGERFLOW_DATABASE_URL"}
)
_SECRET_MARKERS = ("PASSWORD", "SECRET", "TOKEN", "CREDENTIAL")

READ_SIZE = 64 * 1024
MAX_PARTIAL_LINE = 64 * 1024
TERM_GRACE_S = 3.0  # SIGTERM first, SIGKILL after this long
DRAIN_GRACE_S = 2.0  # after the child exits, how long its pipes may stay open


def child_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``environ`` without ledgerflow's secrets, with unbuffered Python output
    (so the task's lines stream live instead of arriving at exit)."""
    env = {
        k: v
        for k, v in environ.items()
        if not (
            k in SECRET_ENV_VARS
            or (k.startswith("LEDGERFLOW_") and any(m in k for m in _SECRET_MARKERS))
        )
    }
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass(frozen=True)
class Outcome:
    """How an attempt ended, as the executor will report it."""

    status: Literal["success", "failed"]
    return_value: Any = None
    error: str | None = None
    error_type: str | None = None
    retryable: bool = True


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def outcome_from(raw: bytes, returncode: int) -> Outcome:
    """Interpret the fd-3 bytes and the exit status of a finished child."""
    text = raw.decode("utf-8", errors="replace").strip()
    if text:
        line = text.splitlines()[0]
        try:
            doc = json.loads(line)
        except json.JSONDecodeError as exc:
            return Outcome(
                "failed",
                error=f"the task runner wrote an unreadable outcome ({exc}): {line[:200]!r}",
                error_type="RunnerProtocolError",
                retryable=False,
            )
        if isinstance(doc, dict) and doc.get("status") == "success":
            return Outcome("success", return_value=doc.get("return_value"))
        if isinstance(doc, dict) and doc.get("status") == "failed":
            return Outcome(
                "failed",
                error=str(doc.get("error") or "task failed"),
                error_type=(str(doc["error_type"]) if doc.get("error_type") else None),
                retryable=bool(doc.get("retryable", True)),
            )
        return Outcome(
            "failed",
            error=f"the task runner wrote an unexpected outcome: {line[:200]!r}",
            error_type="RunnerProtocolError",
            retryable=False,
        )
    if returncode < 0:
        return Outcome(
            "failed",
            error=f"killed by signal {_signal_name(-returncode)}",
            error_type="ProcessKilled",
        )
    return Outcome(
        "failed", error=f"process exited with code {returncode}", error_type="ProcessExited"
    )


LineSink = Callable[[Literal["stdout", "stderr"], str], None]


class TaskProcess:
    """One attempt's child process. ``start()``, then ``wait(execution_timeout)`` for the outcome;
    ``abort(reason)`` kills it early (executor shutdown)."""

    def __init__(
        self,
        payload: Mapping[str, Any],
        *,
        on_line: LineSink,
        argv: Sequence[str] = RUNNER_ARGV,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._payload = json.dumps(payload).encode()
        self._on_line = on_line
        self._argv = list(argv)
        self._env = dict(env) if env is not None else child_environment(os.environ)
        self._proc: asyncio.subprocess.Process | None = None
        self._outcome_reader: asyncio.StreamReader | None = None
        self._pumps: list[asyncio.Task[Any]] = []
        self._abort_reason: str | None = None
        self._aborted = asyncio.Event()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    async def start(self) -> int:
        """Start the child; returns its pid. Raises ``OSError`` if it cannot start."""
        loop = asyncio.get_running_loop()
        r, w = os.pipe()
        try:
            if w == OUTCOME_FD:
                preexec = None
            else:

                def preexec() -> None:  # runs in the child between fork and exec
                    os.dup2(w, OUTCOME_FD)

            self._proc = await asyncio.create_subprocess_exec(
                *self._argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self._env,
                pass_fds=(OUTCOME_FD,) if w != OUTCOME_FD else (w,),
                preexec_fn=preexec,
                start_new_session=True,
                limit=READ_SIZE * 2,
            )
        except BaseException:
            os.close(r)
            os.close(w)
            raise
        os.close(w)
        reader = asyncio.StreamReader(limit=1 << 24)
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(r, "rb", buffering=0)
        )
        self._outcome_reader = reader
        proc = self._proc
        assert proc.stdout is not None and proc.stderr is not None
        self._pumps = [
            loop.create_task(self._pump(proc.stdout, "stdout")),
            loop.create_task(self._pump(proc.stderr, "stderr")),
            loop.create_task(self._feed_stdin()),
        ]
        return proc.pid

    async def _feed_stdin(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            proc.stdin.write(self._payload)
            await proc.stdin.drain()
            proc.stdin.close()

    async def _pump(self, stream: asyncio.StreamReader, name: Literal["stdout", "stderr"]) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        partial = ""
        while True:
            data = await stream.read(READ_SIZE)
            if not data:
                break
            partial += decoder.decode(data)
            *lines, partial = partial.split("\n")
            for line in lines:
                self._on_line(name, line.removesuffix("\r"))
            while len(partial) > MAX_PARTIAL_LINE:
                self._on_line(name, partial[:MAX_PARTIAL_LINE])
                partial = partial[MAX_PARTIAL_LINE:]
        partial += decoder.decode(b"", final=True)
        if partial:
            self._on_line(name, partial.removesuffix("\r"))

    def _signal_group(self, sig: int) -> None:
        if self._proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, sig)

    async def _terminate(self, grace: float) -> None:
        """SIGTERM the process group, then SIGKILL it if the child outlives ``grace``."""
        assert self._proc is not None
        self._signal_group(signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await self._proc.wait()
        self._signal_group(signal.SIGKILL)
        await self._proc.wait()

    def abort(self, reason: str) -> None:
        """Kill the attempt now (SIGKILL to its process group); it fails with ``reason``."""
        if self._abort_reason is None:
            self._abort_reason = reason
            self._signal_group(signal.SIGKILL)
            self._aborted.set()

    async def wait(self, execution_timeout: float | None = None) -> Outcome:
        """Wait for the child to end and return the outcome.

        ``execution_timeout`` is the attempt's wall-time limit: past it the process group
        is killed and the attempt fails with a timeout (the kill is part of the outcome,
        so it is a parameter rather than an outer ``asyncio.timeout``). Every output line
        has been delivered to ``on_line`` when this returns."""
        proc = self._proc
        assert proc is not None and self._outcome_reader is not None
        outcome_task = asyncio.ensure_future(self._outcome_reader.read())
        exit_task = asyncio.ensure_future(proc.wait())
        abort_task = asyncio.ensure_future(self._aborted.wait())
        timed_out = False
        try:
            done, _ = await asyncio.wait(
                {exit_task, abort_task},
                timeout=execution_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if not done:
                timed_out = True
                await self._terminate(TERM_GRACE_S)
            elif abort_task in done and not exit_task.done():
                await proc.wait()
            returncode = await exit_task
            # Anything the task left behind in its group goes with it, so the pipes close.
            self._signal_group(signal.SIGKILL)
            _, late = await asyncio.wait([*self._pumps, outcome_task], timeout=DRAIN_GRACE_S)
            for t in late:
                t.cancel()
            raw = (
                outcome_task.result()
                if outcome_task.done() and not outcome_task.cancelled()
                else b""
            )
        finally:
            abort_task.cancel()
            if not exit_task.done():  # cancelled from outside: leave nothing running
                self._signal_group(signal.SIGKILL)
                exit_task.cancel()
            for t in [*self._pumps, outcome_task]:
                t.cancel()
        if timed_out:
            return Outcome(
                "failed",
                error=(
                    f"Task timed out: it ran longer than its execution_timeout of "
                    f"{execution_timeout:g} s and was killed"
                ),
                error_type="AirflowTaskTimeout",
                retryable=True,
            )
        if self._abort_reason is not None:
            return Outcome(
                "failed", error=self._abort_reason, error_type="ExecutorShutdown", retryable=True
            )
        return outcome_from(raw, returncode)
