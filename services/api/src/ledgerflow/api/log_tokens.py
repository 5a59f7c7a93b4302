"""Continuation tokens for task logs (Airflow's ``token`` / ``continuation_token``).

A token is the number of lines already answered, opaque to clients (URL-safe base64
of a small JSON object). A bad token is a 400 naming the parameter, never a 500.
"""

from __future__ import annotations

import base64
import binascii
import json

from fastapi import HTTPException, status

_OPEN_STATES = frozenset({None, "scheduled", "queued", "running", "up_for_retry"})


def encode(lines: int) -> str:
    raw = json.dumps({"lines": lines}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str) -> int:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        lines = data["lines"]
        if not isinstance(lines, int) or isinstance(lines, bool) or lines < 0:
            raise ValueError(lines)
        return lines
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "Invalid continuation token") from None


def attempt_may_write(state: str | None, current_try: int, try_number: int) -> bool:
    """Whether the attempt's log may still grow: it is the task instance's current try
    (or a later one, not started yet) and the instance has not finished."""
    return try_number >= current_try and state in _OPEN_STATES
