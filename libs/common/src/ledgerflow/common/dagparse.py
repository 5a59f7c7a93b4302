"""Parse a DAG file into :class:`SerializedDag` models, in a child process.

A DAG file is user code: it may loop, crash, print, or exit. It never runs in the
caller's process; ``python -m ledgerflow.sdk.parse`` runs it in a subprocess with a time
limit, and this module turns that process's one-line JSON answer into models or into a
:class:`DagParseError` that points at the line in the user's file.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from typing import Any

from ledgerflow.common.dagmodel import SerializedDag
from pydantic import ValidationError

PARSE_MODULE = "ledgerflow.sdk.parse"
"""``python -m`` target that executes one DAG file and prints the result as JSON."""

ERROR_KINDS = (
    "syntax",
    "import",
    "cycle",
    "duplicate_task_id",
    "duplicate_dag_id",
    "no_dags",
    "timeout",
    "error",
)
"""Values of :attr:`DagParseError.kind`."""


class DagParseError(Exception):
    """A DAG file could not be turned into DAGs.

    ``kind`` is one of :data:`ERROR_KINDS`; ``lineno`` is the line in the user's file when
    one is known. ``str()`` reads ``"dags/x.py:12: cycle: cycle in DAG 'x': a -> b -> a"``.
    A retry cannot help unless ``kind`` is ``"timeout"`` or ``"error"``.
    """

    def __init__(self, message: str, filename: str, lineno: int | None, kind: str) -> None:
        super().__init__(message)
        self.message = message
        self.filename = filename
        self.lineno = lineno
        self.kind = kind

    def __str__(self) -> str:
        where = f"{self.filename}:{self.lineno}" if self.lineno else self.filename
        return f"{where}: {self.kind}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"DagParseError(message={self.message!r}, filename={self.filename!r}, "
            f"lineno={self.lineno!r}, kind={self.kind!r})"
        )

    @property
    def retryable(self) -> bool:
        return self.kind in ("timeout", "error")

    def as_dict(self) -> dict[str, Any]:
        """The API's 422 ``detail``: ``{"message", "filename", "lineno", "kind"}``."""
        return {
            "message": self.message,
            "filename": self.filename,
            "lineno": self.lineno,
            "kind": self.kind,
        }


def _command() -> list[str]:
    return [sys.executable, "-m", PARSE_MODULE]


def _request(content: str, filename: str) -> bytes:
    return json.dumps({"content": content, "filename": filename}).encode()


def _timeout_error(filename: str, timeout: float) -> DagParseError:
    return DagParseError(
        f"parsing took longer than {timeout:g}s and was stopped", filename, None, "timeout"
    )


def _result(
    stdout: bytes, stderr: bytes, returncode: int | None, filename: str
) -> list[SerializedDag]:
    """Models from the parser's answer, or the error it reported (or a crash)."""
    try:
        answer = json.loads(stdout)
        ok = answer["ok"]
    except (ValueError, TypeError, KeyError):
        tail = stderr.decode(errors="replace").strip().splitlines()[-5:]
        raise DagParseError(
            f"the parser process exited with code {returncode} without an answer"
            + (": " + " | ".join(tail) if tail else ""),
            filename,
            None,
            "error",
        ) from None
    if not ok:
        error = answer.get("error") or {}
        lineno = error.get("lineno")
        raise DagParseError(
            str(error.get("message", "unknown error")),
            str(error.get("filename") or filename),
            lineno if isinstance(lineno, int) else None,
            str(error.get("kind", "error")),
        )
    try:
        return [SerializedDag.model_validate(d) for d in answer["dags"]]
    except (ValidationError, KeyError, TypeError) as e:
        raise DagParseError(
            f"the parser produced an invalid DAG: {e}", filename, None, "error"
        ) from None


def _kill_group(pid: int) -> None:
    # The DAG file may have started children of its own; stop them all.
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


async def parse_dag_source(
    content: str,
    filename: str,
    *,
    timeout: float = 30.0,  # noqa: ASYNC109 - the contract's signature; on expiry we kill the child
) -> list[SerializedDag]:
    """Parse a DAG file's source in a subprocess; raise :class:`DagParseError` on a bad file.

    The subprocess (and anything it started) is killed after ``timeout`` seconds.
    """
    proc = await asyncio.create_subprocess_exec(
        *_command(),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        stdout, stderr = await asyncio.wait_for(
            proc.communicate(_request(content, filename)), timeout
        )
    except TimeoutError:
        _kill_group(proc.pid)
        await proc.wait()
        raise _timeout_error(filename, timeout) from None
    except BaseException:  # cancelled: do not leave the child behind
        _kill_group(proc.pid)
        await proc.wait()
        raise
    return _result(stdout, stderr, proc.returncode, filename)


def parse_dag_source_sync(
    content: str, filename: str, *, timeout: float = 30.0
) -> list[SerializedDag]:
    """:func:`parse_dag_source` for synchronous callers (the CLI)."""
    with subprocess.Popen(
        _command(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    ) as proc:
        try:
            stdout, stderr = proc.communicate(_request(content, filename), timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
            proc.communicate()
            raise _timeout_error(filename, timeout) from None
        except BaseException:
            _kill_group(proc.pid)
            raise
    return _result(stdout, stderr, proc.returncode, filename)
