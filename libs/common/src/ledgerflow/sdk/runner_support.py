"""The runner's plumbing, apart from running a task: reading the fields of a runner
request (a bad one is a non-retryable ``BadRequest`` outcome) and the attempt's private
DAG folder (created mode 0700, removed by whoever reaps a killed runner).

Imports only the standard library: the runner imports it before any task code.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any


class OutcomeError(Exception):
    """A failure decided by the runner itself (not raised by the task)."""

    def __init__(self, message: str, error_type: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.message = message
        self.error_type = error_type
        self.retryable = retryable


def parse_date(request: dict[str, Any], key: str) -> datetime | None:
    raw = request.get(key)
    if raw in (None, ""):
        return None
    try:
        value = datetime.fromisoformat(str(raw))
    except ValueError:
        raise OutcomeError(
            f"bad runner request: {key} {raw!r} is not an ISO-8601 date",
            "BadRequest",
            retryable=False,
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def int_field(request: dict[str, Any], key: str, default: int) -> int:
    raw = request.get(key)
    if raw is None:
        return default
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise OutcomeError(
            f"bad runner request: {key} must be an integer, got {raw!r}",
            "BadRequest",
            retryable=False,
        )
    try:
        return int(raw)
    except ValueError:
        raise OutcomeError(
            f"bad runner request: {key} must be an integer, got {raw!r}",
            "BadRequest",
            retryable=False,
        ) from None


def optional_str(request: dict[str, Any], key: str) -> str | None:
    raw = request.get(key)
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise OutcomeError(
            f"bad runner request: {key} must be a string", "BadRequest", retryable=False
        )
    return raw


PRIVATE_DIR_PREFIX = "ledgerflow-task-"


def tmp_base() -> str:
    return os.environ.get("TMPDIR") or "/tmp"


def make_private_dir() -> str:
    # tempfile and shutil cost ~10 ms of imports; a mode-0700 mkdir with a unique name
    # is all this needs. The pid in the name lets whoever reaps a killed child clean up
    # after it (remove_private_dirs).
    base = tmp_base()
    for n in range(100):
        path = os.path.join(
            base, f"{PRIVATE_DIR_PREFIX}{os.getpid()}-{datetime.now().timestamp():f}-{n}"
        )
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            continue
        return path
    raise OSError(f"could not create a private directory under {base}")


def remove_private_dirs(pid: int, base: str | None = None) -> int:
    """Remove the DAG folders a runner process ``pid`` left behind (it was killed, or the
    task called ``os._exit``); for the executor, after it has reaped that child. Returns
    how many it removed."""
    base = base or tmp_base()
    prefix = f"{PRIVATE_DIR_PREFIX}{pid}-"
    removed = 0
    try:
        names = [n for n in os.listdir(base) if n.startswith(prefix)]
    except OSError:
        return 0
    for name in names:
        try:
            remove_tree(os.path.join(base, name))
            removed += 1
        except OSError:
            pass
    return removed


def remove_tree(path: str) -> None:
    for root, dirs, files in os.walk(path, topdown=False):
        for name in files:
            os.unlink(os.path.join(root, name))
        for name in dirs:
            full = os.path.join(root, name)
            if os.path.islink(full):
                os.unlink(full)
            else:
                os.rmdir(full)
    os.rmdir(path)
