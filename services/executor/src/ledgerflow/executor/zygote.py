"""Warm DAG zygotes: one process per DAG file that loaded it once (ADR 0017).

Every attempt forked straight from the fork server writes its DAG file to disk and runs
it before the task can start: for a small file that is most of what an attempt costs,
for a big one it can be seconds. A *zygote* is forked from the fork server for one DAG
file (with its extra files, variables and connections: :func:`ledgerflow.sdk.warm.
warm_key`), loads the file once, and from then on forks the attempts of that file's
tasks itself; each attempt is still its own process, started the same way
(:func:`ledgerflow.executor.forkserver._child`), with the same protocol to the executor.

- The fork server hands an attempt to a ready zygote by passing the client's connection
  and the attempt's four descriptors over a ``SOCK_SEQPACKET`` pair; the zygote answers
  the client (the child's pid, then its exit code) exactly as the server would.
- Nothing waits for a zygote: the first attempts of a file are forked the usual way
  while its zygote loads. A zygote whose load fails (or dies) is not tried again for
  that key; its attempts keep the usual way, which reports the load error itself.
- A load that takes longer than :data:`LOAD_TIMEOUT_S` ends the zygote (as a failed
  load). At most :data:`MAX_ZYGOTES` per fork server; the least recently used one is told to
  quit and exits once its running attempts have ended.
- When the fork server goes (end of file on the pair, or SIGTERM from the server's own
  shutdown), a zygote kills its attempts and exits: an attempt never outlives its
  executor, as with the server's own children.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import sys
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from ledgerflow.executor.attempt_forks import ChildMain, fork_attempt, kill_attempts, reap_attempts

MAX_ZYGOTES = 4
LOAD_TIMEOUT_S = 30
_MAX_MESSAGE = 1 << 20
_READY, _FAILED, _QUIT = b"R", b"F", b"Q"


@dataclass
class Zygote:
    """The fork server's handle on one zygote."""

    key: str
    pid: int
    ctrl: socket.socket
    ready: bool = False
    used: float = field(default_factory=time.monotonic)


class ZygotePool:
    """The fork server's zygotes, by warm key. Single-threaded: called from the
    server's selector loop only."""

    def __init__(
        self,
        selector: selectors.BaseSelector,
        *,
        child: ChildMain,
        limit: int = MAX_ZYGOTES,
    ) -> None:
        self._sel = selector
        self._child = child
        self._limit = limit
        self._by_key: OrderedDict[str, Zygote] = OrderedDict()
        self._by_pid: dict[int, Zygote] = {}
        self.failed: set[str] = set()

    def fds(self) -> list[int]:
        """Descriptors a forked child must close (the zygotes' control sockets)."""
        return [z.ctrl.fileno() for z in self._by_key.values()]

    def route(
        self,
        conn: socket.socket,
        fds: Sequence[int],
        header: dict[str, Any],
        keep: Sequence[int],
    ) -> bool:
        """Hand the attempt to the zygote of its DAG file; False when there is none
        ready (one is started for next time), so the caller forks it itself."""
        warm = header.get("warm")
        if not isinstance(warm, dict) or not isinstance(warm.get("key"), str):
            return False
        key = warm["key"]
        zygote = self._by_key.get(key)
        if zygote is None:
            if key not in self.failed and isinstance(warm.get("load"), dict):
                self._start(key, warm["load"], [*keep, *fds])
            return False
        if not zygote.ready:
            return False
        slim = {k: v for k, v in header.items() if k != "warm"}
        try:
            socket.send_fds(zygote.ctrl, [json.dumps(slim).encode()], [conn.fileno(), *fds])
        except OSError:
            self._drop(zygote, failed=True)
            return False
        zygote.used = time.monotonic()
        self._by_key.move_to_end(key)
        return True

    def on_readable(self, zygote: Zygote) -> None:
        """A zygote reported its load (ready or failed), or its pair closed."""
        try:
            msg = zygote.ctrl.recv(4096)
        except OSError:
            msg = b""
        if msg[:1] == _READY:
            zygote.ready = True
            return
        if msg[:1] == _FAILED:
            print(
                f"forkserver: DAG zygote {zygote.pid} could not load its file "
                f"({msg[1:].decode(errors='replace')}); its attempts load it themselves",
                file=sys.stderr,
                flush=True,
            )
        self._drop(zygote, failed=True)

    def exited(self, pid: int) -> bool:
        """``pid`` was reaped; True if it was a zygote."""
        zygote = self._by_pid.pop(pid, None)
        if zygote is None:
            return False
        if self._by_key.get(zygote.key) is zygote:  # died while in use
            self._drop(zygote, failed=True)
        return True

    def kill_all(self, grace: float = 2.0) -> None:
        """The fork server stops: every zygote kills its attempts and exits."""
        for zygote in list(self._by_key.values()):
            self._drop(zygote, failed=False)
        zygotes = list(self._by_pid.values())
        for zygote in zygotes:
            with contextlib.suppress(ProcessLookupError):
                os.kill(zygote.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for zygote in zygotes:
            while time.monotonic() < deadline:
                try:
                    pid, _ = os.waitpid(zygote.pid, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid:
                    break
                time.sleep(0.01)
            else:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(zygote.pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(zygote.pid, 0)
            self._by_pid.pop(zygote.pid, None)

    # ------------------------------------------------------------------ internals
    def _start(self, key: str, load: dict[str, Any], keep: Sequence[int]) -> None:
        """Fork the zygote of ``key``; ``keep``: the server's descriptors it must close
        (the listener, the attempts' connections and pipes)."""
        while len(self._by_key) >= self._limit:
            oldest = next(iter(self._by_key.values()))
            with contextlib.suppress(OSError):
                oldest.ctrl.send(_QUIT)
            self._drop(oldest, failed=False)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        close = [*keep, *self.fds(), ours.fileno()]
        pid = os.fork()
        if pid == 0:
            _zygote_main(theirs, load, close, self._child)
        theirs.close()
        zygote = Zygote(key, pid, ours)
        self._by_key[key] = zygote
        self._by_pid[pid] = zygote
        self._sel.register(ours, selectors.EVENT_READ, zygote)

    def _drop(self, zygote: Zygote, *, failed: bool) -> None:
        """Stop routing to ``zygote`` (its pid stays known until it is reaped)."""
        if failed:
            self.failed.add(zygote.key)
        if self._by_key.get(zygote.key) is zygote:
            del self._by_key[zygote.key]
        with contextlib.suppress(KeyError, ValueError):
            self._sel.unregister(zygote.ctrl)
        zygote.ctrl.close()


# --------------------------------------------------------------------------- zygote side
def _zygote_main(
    ctrl: socket.socket, load: dict[str, Any], close: Sequence[int], child: ChildMain
) -> NoReturn:
    """In the forked zygote: load the DAG file, then fork attempts; never returns."""
    code = 0
    folder: str | None = None
    try:
        for fd in close:
            with contextlib.suppress(OSError):
                os.close(fd)
        # What the DAG file prints while it loads goes nowhere (the server's stdout is
        # the executor's start-up pipe); attempts get their own streams.
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.close(devnull)
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        stop = False

        def on_term(*_: object) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, on_term)
        try:
            from ledgerflow.sdk import warm

            # A file whose top-level code never returns must not hold a zygote slot
            # forever: SIGALRM's default action ends the process (Airflow's
            # dagbag_import_timeout is 30 s too); its attempts go the usual way.
            signal.alarm(LOAD_TIMEOUT_S)
            folder = warm.preload(load).folder
            signal.alarm(0)
        except BaseException as e:
            with contextlib.suppress(OSError):
                ctrl.send(_FAILED + f"{type(e).__name__}: {e}"[:1000].encode())
        else:
            import gc

            gc.collect()
            gc.freeze()
            ctrl.send(_READY)
            _serve(ctrl, wake_r, lambda: stop, child)
    except BaseException:
        code = 70
    finally:
        if folder is not None:
            with contextlib.suppress(OSError):
                from ledgerflow.sdk.runner_support import remove_tree

                remove_tree(folder)
        os._exit(code)


def _serve(ctrl: socket.socket, wake_r: int, stopping: Any, child: ChildMain) -> None:
    sel = selectors.DefaultSelector()
    sel.register(ctrl, selectors.EVENT_READ, "ctrl")
    sel.register(wake_r, selectors.EVENT_READ, "wake")
    children: dict[int, socket.socket] = {}
    accepting = True
    while accepting or children:
        for key, _ in sel.select(timeout=1.0):
            if key.data == "wake":
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 4096)
                continue
            try:
                msg, fds, _flags, _addr = socket.recv_fds(ctrl, _MAX_MESSAGE, 5)
            except OSError:
                msg, fds = b"", []
            if msg == _QUIT:  # evicted: finish what runs, take nothing new
                accepting = False
                sel.unregister(ctrl)
            elif not msg:  # the fork server is gone: so are its attempts
                kill_attempts(children)
                return
            else:
                _fork_attempt(msg, fds, ctrl, wake_r, children, child)
        if stopping():
            kill_attempts(children)
            return
        reap_attempts(children)


def _fork_attempt(
    msg: bytes,
    fds: list[int],
    ctrl: socket.socket,
    wake_r: int,
    children: dict[int, socket.socket],
    child: ChildMain,
) -> None:
    if len(fds) != 5:  # not what the fork server sends: answer nothing, keep nothing
        for fd in fds:
            os.close(fd)
        return
    conn = socket.socket(fileno=fds[0])
    try:
        header = json.loads(msg)
    except ValueError:
        header = {}
    keep = [ctrl.fileno(), wake_r, conn.fileno(), *(c.fileno() for c in children.values())]
    fork_attempt(conn, fds[1:], header, keep, children, child)
