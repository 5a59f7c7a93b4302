"""The fork server's side of one attempt's connection, shared by the fork server and
its DAG zygotes (ADR 0008, ADR 0017): fork the attempt and answer its pid, reap it and
answer its exit code, kill what is left when the forker goes."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any

INT = struct.Struct("!i")

# (the attempt's four descriptors, the request header, descriptors the child closes)
ChildMain = Callable[[Sequence[int], Mapping[str, Any], Sequence[int]], None]


def fork_attempt(
    conn: socket.socket,
    fds: Sequence[int],
    header: Mapping[str, Any],
    keep: Sequence[int],
    children: dict[int, socket.socket],
    child: ChildMain,
) -> None:
    """Fork ``child`` for the attempt, close our copies of its descriptors, send the
    client its pid and remember the connection for its exit code."""
    pid = os.fork()
    if pid == 0:
        child(fds, header, keep)
    for fd in fds:
        os.close(fd)
    with contextlib.suppress(OSError):  # the client is gone; the child is still reaped
        conn.sendall(INT.pack(pid))
    children[pid] = conn


def reap_attempts(
    children: dict[int, socket.socket], on_other: Callable[[int], object] | None = None
) -> None:
    """Reap every ended child; send each attempt's client its exit code (as
    ``subprocess``: negative for a signal). ``on_other`` hears of any other child."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = children.pop(pid, None)
        if conn is None:
            if on_other is not None:
                on_other(pid)
            continue
        with contextlib.suppress(OSError):
            conn.sendall(INT.pack(os.waitstatus_to_exitcode(status)))
        conn.close()


def kill_attempts(children: dict[int, socket.socket]) -> None:
    """SIGKILL every attempt's process group and reap them."""
    for pid in list(children):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    for pid in list(children):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        children.pop(pid).close()
