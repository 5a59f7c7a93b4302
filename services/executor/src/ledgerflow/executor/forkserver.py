"""A warm process that forks task attempts (docs/adr/0008-fork-server.md).

Starting ``python -m ledgerflow.sdk.runner`` costs a fresh interpreter per attempt
(~80 ms on the reference machine). The fork server is started once per executor, imports
the SDK (and whatever ``LEDGERFLOW_EXECUTOR_PRELOAD`` names), and then forks one child
per attempt. The child runs exactly the runner's ``main`` with the same protocol as the
subprocess path: the request on stdin, the task's output on stdout/stderr, the outcome
on fd 3 — so an attempt behaves the same whichever way it was started.

Isolation: the fork server is started with the task environment (the executor's secrets
already removed), it never sees the executor's memory, and each child:

- starts its own session (``setsid``), so a timeout or a cancel kills the whole group;
- gets its environment from the request (not the server's);
- gets an address-space limit (``RLIMIT_AS``) when the executor sets one;
- exits with ``os._exit``, never returning into the server's loop.

Wire protocol (one Unix-socket connection per attempt):

1. client → server: ``sendmsg`` with four file descriptors (stdin read end, stdout write
   end, stderr write end, outcome write end) and a 4-byte big-endian length followed by
   a JSON header ``{"env": {...}, "rlimit_as": int|null, "cwd": str|null}``;
2. server → client: 4 bytes, the child's pid (signed big-endian);
3. server → client: 4 bytes, the child's return code when it ends (as
   ``subprocess``: negative for a signal), then the server closes the connection.

Attempts whose request carries a ``warm`` key are forked from the zygote of their DAG
file when one is ready (ADR 0017, :mod:`ledgerflow.executor.zygote`); the protocol seen
by the client is the same.

The server exits when its stdin reaches end of file (the executor is gone), killing
every child it still has: an attempt whose executor died is retried elsewhere after
the heartbeat timeout, and must not keep running.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import selectors
import signal
import socket
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ledgerflow.executor.attempt_forks import INT as _INT
from ledgerflow.executor.attempt_forks import fork_attempt, kill_attempts, reap_attempts
from ledgerflow.executor.zygote import Zygote, ZygotePool

_MAX_HEADER = 1 << 20
DEFAULT_PRELOAD = (
    "ledgerflow.sdk",
    "ledgerflow.sdk.runner",
    "ledgerflow.sdk.compat",
    "ledgerflow.sdk.templating",
    "jinja2",
    "jinja2.sandbox",
    "jinja2.nativetypes",
)


# --------------------------------------------------------------------------- server side
def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("client closed the connection mid-request")
        buf += chunk
    return buf


def _read_request(conn: socket.socket) -> tuple[list[int], dict[str, Any]]:
    conn.settimeout(10.0)
    msg, fds, _flags, _addr = socket.recv_fds(conn, 4096, 4)
    try:
        if len(fds) != 4:
            raise ValueError(f"expected 4 file descriptors, got {len(fds)}")
        if len(msg) < 4:
            msg += _recv_exact(conn, 4 - len(msg))
        (length,) = _INT.unpack(msg[:4])
        if not 0 < length <= _MAX_HEADER:
            raise ValueError(f"bad header length {length}")
        body = msg[4:]
        if len(body) < length:
            body += _recv_exact(conn, length - len(body))
        header = json.loads(body)
        if not isinstance(header, dict):
            raise ValueError("header must be a JSON object")
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    conn.settimeout(None)
    return fds, header


def _child(fds: Sequence[int], header: Mapping[str, Any], close: Sequence[int]) -> None:
    """In the forked child: become the task process and never return."""
    code = 70
    try:
        for fd in close:
            with contextlib.suppress(OSError):
                os.close(fd)
        os.setsid()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        for fd in fds:
            if fd > 3:
                os.close(fd)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        env = header.get("env")
        if isinstance(env, dict):
            os.environ.clear()
            os.environ.update({str(k): str(v) for k, v in env.items()})
            tempfile.tempdir = None  # re-read TMPDIR (each attempt has its own)
        limit = header.get("rlimit_as")
        if isinstance(limit, int) and limit > 0:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        cwd = header.get("cwd")
        os.chdir(cwd if isinstance(cwd, str) and cwd else tempfile.gettempdir())
        # Fresh standard streams on the new descriptors (the server's objects were
        # created for its own fds and may hold buffered bytes).
        sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.__stdout__ = sys.stdout
        sys.__stderr__ = sys.stderr
        sys.argv = ["ledgerflow.sdk.runner"]
        from ledgerflow.sdk import runner

        code = runner.main([])
        sys.stdout.flush()
        sys.stderr.flush()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:
        with contextlib.suppress(BaseException):
            import traceback

            traceback.print_exc()
            sys.stderr.flush()
    finally:
        os._exit(code)


@dataclass
class _Server:
    listener: socket.socket
    sel: selectors.BaseSelector = field(default_factory=selectors.DefaultSelector)
    children: dict[int, socket.socket] = field(default_factory=dict)
    wake_r: int = -1
    zygotes: ZygotePool = field(init=False)

    def __post_init__(self) -> None:
        self.zygotes = ZygotePool(self.sel, child=_child)

    def serve(self) -> None:
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        self.wake_r = wake_r
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, lambda *_: None)  # shutdown is by stdin EOF
        self.listener.setblocking(False)
        self.sel.register(self.listener, selectors.EVENT_READ, "accept")
        self.sel.register(wake_r, selectors.EVENT_READ, "signal")
        self.sel.register(sys.stdin.fileno(), selectors.EVENT_READ, "stdin")
        try:
            while True:
                for key, _ in self.sel.select(timeout=1.0):
                    if key.data == "accept":
                        self._accept()
                    elif key.data == "signal":
                        with contextlib.suppress(BlockingIOError):
                            os.read(wake_r, 4096)
                    elif key.data == "stdin":
                        if not os.read(sys.stdin.fileno(), 4096):
                            return
                    elif isinstance(key.data, Zygote):
                        self.zygotes.on_readable(key.data)
                self._reap()
        finally:
            self._kill_all()

    def _accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except BlockingIOError:
            return
        conn.setblocking(True)
        try:
            fds, header = _read_request(conn)
        except (OSError, ValueError) as e:
            print(f"forkserver: bad request: {e}", file=sys.stderr, flush=True)
            conn.close()
            return
        keep = [self.listener.fileno(), self.wake_r, sys.stdin.fileno(), conn.fileno()]
        keep += [c.fileno() for c in self.children.values()]
        if self.zygotes.route(conn, fds, header, keep):
            for fd in fds:  # the zygote has its own copies now, and answers the client
                os.close(fd)
            conn.close()
            return
        keep += self.zygotes.fds()
        fork_attempt(conn, fds, header, keep, self.children, _child)

    def _reap(self) -> None:
        reap_attempts(self.children, on_other=self.zygotes.exited)  # zygotes that quit

    def _kill_all(self) -> None:
        self.zygotes.kill_all()
        kill_attempts(self.children)


_WARMUP_SOURCE = """
from datetime import datetime
from ledgerflow.sdk import DAG, task
from ledgerflow.sdk.operators import BashOperator

with DAG("lf_warmup", schedule=None, start_date=datetime(2024, 1, 1)):
    @task
    def warm(x: str) -> str:
        return x

    warm.override(task_id="t")("{{ ds }} {{ params }}") >> BashOperator(
        task_id="b", bash_command="echo {{ ti.task_id }}"
    )
"""


def _warm_up() -> None:
    """Run one no-op attempt in the server itself, so the imports the runner makes
    lazily on its first attempt (templating, XCom, context...) are already done in
    every forked child. Its output goes nowhere; a failure only costs speed."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from ledgerflow.sdk import runner

    request = {
        "source": _WARMUP_SOURCE,
        "filename": "lf_warmup.py",
        "dag_id": "lf_warmup",
        "task_id": "t",
        "run_id": "warmup",
        "map_index": -1,
        "try_number": 1,
        "conf": {},
        "logical_date": "2024-01-01T00:00:00+00:00",
    }
    sink = io.StringIO()
    try:
        with redirect_stdout(sink), redirect_stderr(sink):
            outcome = runner.execute_request(request)
        if outcome.get("status") != "success":
            print(f"forkserver: warm-up attempt ended {outcome}", file=sys.stderr, flush=True)
    except Exception as e:
        print(f"forkserver: warm-up failed: {e}", file=sys.stderr, flush=True)


def serve(path: str, preload: Sequence[str] = DEFAULT_PRELOAD) -> None:
    """Import ``preload``, warm the runner up, listen on the Unix socket ``path`` and
    fork attempts until stdin is closed."""
    from ledgerflow.common.telemetry import tracing_modules  # OTel SDK, when tracing

    for name in (*preload, *tracing_modules()):
        try:
            importlib.import_module(name)
        except Exception as e:  # a bad preload must not stop the executor
            print(f"forkserver: cannot preload {name!r}: {e}", file=sys.stderr, flush=True)
    _warm_up()
    # Move everything imported so far out of the collector's generations, so forked
    # children do not touch (and copy) those pages when they collect (Python docs:
    # gc.freeze before fork).
    import gc

    gc.collect()
    gc.freeze()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    listener.bind(path)
    listener.listen(128)
    # Tell the client we are ready (it waits for this line before connecting).
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    try:
        _Server(listener).serve()
    finally:
        listener.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m ledgerflow.executor.forkserver SOCKET [MODULE...]", file=sys.stderr)
        return 2
    preload = tuple(args[1:]) or DEFAULT_PRELOAD
    serve(args[0], preload)
    return 0


# --------------------------------------------------------------------------- client side
class ForkServerError(RuntimeError):
    """The fork server is not running or could not start an attempt."""


class ForkedProcess:
    """An attempt started by the fork server; quacks like the parts of
    ``asyncio.subprocess.Process`` that :class:`~ledgerflow.executor.child.TaskProcess`
    uses (``pid``, ``stdout``, ``stderr``, ``wait()``, ``returncode``)."""

    def __init__(
        self,
        pid: int,
        stdout: asyncio.StreamReader,
        stderr: asyncio.StreamReader,
        status: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.pid = pid
        self.stdout = stdout
        self.stderr = stderr
        self.returncode: int | None = None
        self._status = status
        self._writer = writer
        self._done: asyncio.Future[int] | None = None

    async def _read_status(self) -> int:
        try:
            raw = await self._status.readexactly(_INT.size)
            (code,) = _INT.unpack(raw)
        except (asyncio.IncompleteReadError, ConnectionError):
            # The fork server died: the child was killed with it (or is orphaned and
            # killed below). Report it like a SIGKILL.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
            code = -signal.SIGKILL
        finally:
            self._writer.close()
        self.returncode = code
        return code

    async def wait(self) -> int:
        if self._done is None:
            self._done = asyncio.ensure_future(self._read_status())
        return await asyncio.shield(self._done)


class ForkServer:
    """Client handle: starts the server process and forks attempts through it."""

    def __init__(
        self,
        *,
        env: Mapping[str, str],
        preload: Sequence[str] = DEFAULT_PRELOAD,
        python: str = sys.executable,
        socket_dir: str | None = None,
    ) -> None:
        self._env = dict(env)
        self._preload = tuple(preload)
        self._python = python
        self._dir = tempfile.mkdtemp(prefix="lf-forkserver-", dir=socket_dir)
        self._path = os.path.join(self._dir, "sock")
        self._proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def start(self, timeout: float = 30.0) -> None:
        os.makedirs(self._dir, mode=0o700, exist_ok=True)  # stop() removes it
        self._proc = await asyncio.create_subprocess_exec(
            self._python,
            "-m",
            "ledgerflow.executor.forkserver",
            self._path,
            *self._preload,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=self._env,
        )
        assert self._proc.stdout is not None
        try:
            async with asyncio.timeout(timeout):
                line = await self._proc.stdout.readline()
        except TimeoutError:
            line = b""
        if line.strip() != b"ready":
            await self.stop()
            raise ForkServerError("the fork server did not start (see the executor's stderr)")

    async def ensure_started(self) -> None:
        async with self._lock:
            if not self.running:
                if self._proc is not None:
                    await self.stop()
                await self.start()

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            if proc.stdin is not None:
                proc.stdin.close()  # EOF: the server kills its children and exits
            try:
                async with asyncio.timeout(5.0):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
        with contextlib.suppress(OSError):
            os.unlink(self._path)
        with contextlib.suppress(OSError):
            os.rmdir(self._dir)

    async def spawn(
        self,
        *,
        env: Mapping[str, str],
        rlimit_as: int | None = None,
        cwd: str | None = None,
        read_limit: int = 1 << 17,
        warm: Mapping[str, Any] | None = None,
    ) -> tuple[ForkedProcess, asyncio.StreamWriter, asyncio.StreamReader]:
        """Fork one attempt. Returns the process, a writer for its stdin, and a reader
        for its outcome descriptor. Raises :class:`ForkServerError` when it cannot.

        ``warm``: ``{"key", "load"}`` of the attempt's DAG file (ADR 0017): the server
        forks it from that file's zygote when one is ready, and starts one otherwise."""
        if not self.running:
            raise ForkServerError("the fork server is not running")
        loop = asyncio.get_running_loop()
        pipes = [os.pipe() for _ in range(4)]  # stdin, stdout, stderr, outcome
        child_ends = [pipes[0][0], pipes[1][1], pipes[2][1], pipes[3][1]]
        our_ends = [pipes[0][1], pipes[1][0], pipes[2][0], pipes[3][0]]
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            doc: dict[str, Any] = {"env": dict(env), "rlimit_as": rlimit_as, "cwd": cwd}
            if warm is not None:
                doc["warm"] = dict(warm)
            header = json.dumps(doc).encode()
            sock.setblocking(False)
            await loop.sock_connect(sock, self._path)
            first = _INT.pack(len(header)) + header
            sock.setblocking(True)
            sent = socket.send_fds(sock, [first[:4096]], child_ends)
            if sent < len(first):
                sock.sendall(first[sent:])
            sock.setblocking(False)
        except OSError as e:
            sock.close()
            for fd in (*child_ends, *our_ends):
                os.close(fd)
            raise ForkServerError(f"cannot reach the fork server: {e}") from e
        for fd in child_ends:
            os.close(fd)
        status_reader, status_writer = await asyncio.open_unix_connection(sock=sock)
        try:
            (pid,) = _INT.unpack(await status_reader.readexactly(_INT.size))
        except (asyncio.IncompleteReadError, ConnectionError) as e:
            status_writer.close()
            for fd in our_ends:
                os.close(fd)
            raise ForkServerError("the fork server refused the attempt") from e

        async def reader_for(fd: int, limit: int) -> asyncio.StreamReader:
            reader = asyncio.StreamReader(limit=limit)
            await loop.connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0)
            )
            return reader

        stdout = await reader_for(our_ends[1], read_limit)
        stderr = await reader_for(our_ends[2], read_limit)
        outcome = await reader_for(our_ends[3], 1 << 24)
        transport, protocol = await loop.connect_write_pipe(
            asyncio.streams.FlowControlMixin, os.fdopen(our_ends[0], "wb", buffering=0)
        )
        stdin = asyncio.StreamWriter(transport, protocol, None, loop)
        proc = ForkedProcess(pid, stdout, stderr, status_reader, status_writer)
        return proc, stdin, outcome


if __name__ == "__main__":
    sys.exit(main())
