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
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from ledgerflow.common.events import AssetEventReport
from ledgerflow.executor.forkserver import ForkedProcess, ForkServer, ForkServerError
from ledgerflow.sdk.warm import load_fields, warm_key

log = logging.getLogger(__name__)

OUTCOME_FD = 3
RUNNER_ARGV: tuple[str, ...] = (sys.executable, "-m", "ledgerflow.sdk.runner")

# Environment variables the task must never see: the executor's own secrets.
SECRET_ENV_VARS = frozenset(
    {
        "LEDGERFLOW_ADMIN_PASSWORD",
        "LEDGERFLOW_SECRET_KEY",
        "LEDGERFLOW_DATABASE_URL",
        "LEDGERFLOW_FERNET_KEY",
    }
)
_SECRET_MARKERS = ("PASSWORD", "SECRET", "TOKEN", "CREDENTIAL")

READ_SIZE = 64 * 1024
# Requests larger than this (a big DAG file or extra files) are never sent to a zygote.
WARM_MAX_REQUEST_BYTES = 512 * 1024
MAX_PARTIAL_LINE = 64 * 1024
TERM_GRACE_S = 3.0  # SIGTERM first, SIGKILL after this long
DRAIN_GRACE_S = 2.0  # after the child exits, how long its pipes may stay open

OutcomeStatus = Literal["success", "failed", "skipped", "rescheduled"]


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
    """How an attempt ended, as the executor will report it (ADR 0006, "runner protocol").

    - ``success``: ``return_value``, the other pushed ``xcoms``, and for branch /
      short-circuit operators ``follow_task_ids`` / ``short_circuit``;
    - ``skipped``: the task skipped itself (``reason``);
    - ``rescheduled``: a reschedule-mode sensor asks to run again at ``reschedule_date``;
    - ``failed``: ``error``, ``error_type`` and whether a retry can help.

    ``rendered_fields`` (the task's template fields after rendering) may come with any
    status but ``rescheduled``.
    """

    status: OutcomeStatus
    return_value: Any = None
    error: str | None = None
    error_type: str | None = None
    retryable: bool = True
    xcoms: Mapping[str, Any] = field(default_factory=dict)
    follow_task_ids: tuple[str, ...] | None = None
    short_circuit: Literal["direct", "all"] | None = None
    rendered_fields: Mapping[str, Any] = field(default_factory=dict)
    reschedule_date: datetime | None = None
    reason: str | None = None
    # ``success``: the asset events of the task's outlets (ADR 0013).
    asset_events: tuple[AssetEventReport, ...] = ()


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _protocol_error(what: str, line: str) -> Outcome:
    return Outcome(
        "failed",
        error=f"{what}: {line[:200]!r}",
        error_type="RunnerProtocolError",
        retryable=False,
    )


def _mapping(doc: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"{key} must be an object, got {type(value).__name__}")
    return {str(k): v for k, v in value.items()}


def _parse_outcome(doc: Mapping[str, Any]) -> Outcome | None:
    """The outcome an fd-3 document describes; None for an unknown status. Raises
    ``TypeError``/``ValueError`` for a known status with malformed fields."""
    status = doc.get("status")
    rendered = _mapping(doc, "rendered_fields")
    if status == "success":
        follow = doc.get("follow_task_ids")
        if follow is not None:
            if isinstance(follow, str):
                follow = [follow]
            if not isinstance(follow, list | tuple):
                raise TypeError("follow_task_ids must be a list of task ids")
            follow = tuple(str(t) for t in follow)
        short = doc.get("short_circuit")
        if short not in (None, "direct", "all"):
            raise ValueError(f"short_circuit must be null, 'direct' or 'all', got {short!r}")
        raw_assets = doc.get("asset_events") or []
        if not isinstance(raw_assets, list):
            raise TypeError("asset_events must be a list")
        return Outcome(
            "success",
            return_value=doc.get("return_value"),
            xcoms=_mapping(doc, "xcoms"),
            follow_task_ids=follow,
            short_circuit=short,
            rendered_fields=rendered,
            asset_events=tuple(AssetEventReport.model_validate(a) for a in raw_assets),
        )
    if status == "failed":
        return Outcome(
            "failed",
            error=str(doc.get("error") or "task failed"),
            error_type=(str(doc["error_type"]) if doc.get("error_type") else None),
            retryable=bool(doc.get("retryable", True)),
            rendered_fields=rendered,
        )
    if status == "skipped":
        reason = doc.get("reason")
        return Outcome("skipped", reason=str(reason) if reason else None, rendered_fields=rendered)
    if status == "rescheduled":
        raw = doc.get("reschedule_date")
        if not isinstance(raw, str):
            raise TypeError("reschedule_date must be an ISO-8601 string")
        when = datetime.fromisoformat(raw)
        if when.tzinfo is None:
            raise ValueError("reschedule_date must carry a UTC offset")
        return Outcome("rescheduled", reschedule_date=when)
    return None


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
        if isinstance(doc, dict):
            try:
                parsed = _parse_outcome(doc)
            except (TypeError, ValueError) as exc:
                return _protocol_error(f"the task runner wrote a malformed outcome ({exc})", line)
            if parsed is not None:
                return parsed
        return _protocol_error("the task runner wrote an unexpected outcome", line)
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
        fork_server: ForkServer | None = None,
        memory_limit_bytes: int | None = None,
        gate: asyncio.Future[None] | None = None,
        warm: bool = False,
    ) -> None:
        self._payload = json.dumps(payload).encode()
        # The DAG file's zygote (ADR 0017), for a file small enough to travel in the
        # fork server's request header.
        self._warm: dict[str, Any] | None = None
        if warm and fork_server is not None and len(self._payload) <= WARM_MAX_REQUEST_BYTES:
            self._warm = {"key": warm_key(dict(payload)), "load": load_fields(dict(payload))}
        # The request is written to the child only once ``gate`` is done (None: at once).
        self._gate = gate
        self._on_line = on_line
        self._argv = list(argv)
        self._env = dict(env) if env is not None else child_environment(os.environ)
        self._fork_server = fork_server
        self._memory_limit = memory_limit_bytes
        # Each attempt gets a private temporary directory (its TMPDIR and working
        # directory), removed when the attempt ends, whatever the task left in it.
        self._tmpdir = tempfile.mkdtemp(prefix="lf-attempt-")
        self._env["TMPDIR"] = self._tmpdir
        self._proc: asyncio.subprocess.Process | ForkedProcess | None = None
        self._stdin: asyncio.StreamWriter | None = None
        self._outcome_reader: asyncio.StreamReader | None = None
        self._pumps: list[asyncio.Task[Any]] = []
        self._abort_reason: str | None = None
        self._abort_type = "ExecutorShutdown"
        self._aborted = asyncio.Event()
        self._kill_later: asyncio.TimerHandle | None = None

    def cleanup(self) -> None:
        """Remove the attempt's temporary directory (idempotent)."""
        shutil.rmtree(self._tmpdir, ignore_errors=True)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    async def start(self) -> int:
        """Start the child; returns its pid. Raises ``OSError`` if it cannot start.

        With a fork server the child is forked from it (ADR 0008); if the server cannot
        be reached the attempt falls back to a fresh interpreter."""
        loop = asyncio.get_running_loop()
        if self._fork_server is not None:
            try:
                await self._fork_server.ensure_started()
                proc, stdin, outcome = await self._fork_server.spawn(
                    env=self._env,
                    rlimit_as=self._memory_limit,
                    cwd=self._tmpdir,
                    read_limit=READ_SIZE * 2,
                    warm=self._warm,
                )
            except ForkServerError as e:
                log.warning("fork server unavailable (%s); starting a fresh interpreter", e)
            else:
                self._proc, self._stdin, self._outcome_reader = proc, stdin, outcome
                self._start_pumps(loop, proc.stdout, proc.stderr)
                return proc.pid
        r, w = os.pipe()
        limit = self._memory_limit
        try:

            def preexec() -> None:  # runs in the child between fork and exec
                if w != OUTCOME_FD:
                    os.dup2(w, OUTCOME_FD)
                if limit:
                    import resource

                    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

            self._proc = await asyncio.create_subprocess_exec(
                *self._argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self._env,
                cwd=self._tmpdir,
                pass_fds=(OUTCOME_FD,) if w != OUTCOME_FD else (w,),
                preexec_fn=preexec,
                start_new_session=True,
                limit=READ_SIZE * 2,
            )
        except BaseException:
            os.close(r)
            os.close(w)
            self.cleanup()
            raise
        os.close(w)
        reader = asyncio.StreamReader(limit=1 << 24)
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(r, "rb", buffering=0)
        )
        self._outcome_reader = reader
        proc = self._proc
        assert proc.stdout is not None and proc.stderr is not None and proc.stdin is not None
        self._stdin = proc.stdin
        self._start_pumps(loop, proc.stdout, proc.stderr)
        return proc.pid

    def _start_pumps(
        self,
        loop: asyncio.AbstractEventLoop,
        stdout: asyncio.StreamReader,
        stderr: asyncio.StreamReader,
    ) -> None:
        self._pumps = [
            loop.create_task(self._pump(stdout, "stdout")),
            loop.create_task(self._pump(stderr, "stderr")),
            loop.create_task(self._feed_stdin()),
        ]

    async def _feed_stdin(self) -> None:
        stdin = self._stdin
        assert stdin is not None
        if self._gate is not None:
            await self._gate
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            stdin.write(self._payload)
            await stdin.drain()
            stdin.close()

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

    def cancel(self, reason: str, grace: float) -> None:
        """Stop the attempt because a user (or the zombie detector) asked: SIGTERM to its
        process group (the task sees ``AirflowTaskTerminated`` and may clean up), SIGKILL
        after ``grace`` seconds. It fails with ``reason`` (``TaskCancelled``)."""
        if self._abort_reason is None:
            self._abort_reason = reason
            self._abort_type = "TaskCancelled"
            self._signal_group(signal.SIGTERM)
            self._kill_later = asyncio.get_running_loop().call_later(
                grace, self._signal_group, signal.SIGKILL
            )
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
            if self._gate is not None and not self._gate.done() and self._pumps:
                self._pumps[-1].cancel()  # the request was never written: nothing to wait for
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
            if self._kill_later is not None:
                self._kill_later.cancel()
            if not exit_task.done():  # cancelled from outside: leave nothing running
                self._signal_group(signal.SIGKILL)
                exit_task.cancel()
            for t in [*self._pumps, outcome_task]:
                t.cancel()
            self.cleanup()
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
                "failed",
                error=self._abort_reason,
                error_type=self._abort_type,
                retryable=self._abort_type != "TaskCancelled",
            )
        return outcome_from(raw, returncode)
