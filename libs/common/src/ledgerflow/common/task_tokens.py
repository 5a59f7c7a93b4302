"""Task tokens: the short-lived credential an executor gives each attempt, so the task
can read other runs' states from the API (``ExternalTaskSensor``), as Airflow 3's task
SDK asks its execution API with a per-task JWT.

A task token is an HS256 JWT signed with ``LEDGERFLOW_SECRET_KEY`` (the key the API
signs user tokens with), with the claims of a user token plus ``kind: "task"``::

    {"sub": "task:<dag_id>/<run_id>/<task_id>/<map_index>/<try_number>", "kind": "task",
     "role": "viewer", "iat": ..., "exp": ..., "iss": "ledgerflow"}

The API treats it as a read-only viewer named by ``sub`` (no user lookup; ADR 0009).
The task process gets the token, never the key (the executor scrubs the key from the
child's environment). Minting needs only the standard library, so the executor does not
depend on a JWT library; the API verifies with PyJWT, which reads the same format.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

TASK_TOKEN_KIND = "task"
TASK_SUBJECT_PREFIX = "task:"
TASK_TOKEN_ROLE = "viewer"
ISSUER = "ledgerflow"

DEFAULT_TASK_TTL_SECONDS = 24 * 3600
"""A task without ``execution_timeout`` gets a token valid this long (plus the margin)."""
TASK_TTL_MARGIN_SECONDS = 10 * 60
"""Added to the attempt's timeout: start-up, callbacks, and the executor's kill grace."""


def task_subject(dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int) -> str:
    """``task:<dag_id>/<run_id>/<task_id>/<map_index>/<try_number>``: the principal name
    the API records for requests made with the attempt's token."""
    return f"{TASK_SUBJECT_PREFIX}{dag_id}/{run_id}/{task_id}/{map_index}/{try_number}"


def task_token_ttl(execution_timeout_seconds: float | None) -> int:
    """How long an attempt's token lives: its ``execution_timeout`` (or 24 h) plus a margin."""
    base = execution_timeout_seconds if execution_timeout_seconds else DEFAULT_TASK_TTL_SECONDS
    return int(base) + TASK_TTL_MARGIN_SECONDS


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def mint_task_token(
    secret: str,
    *,
    dag_id: str,
    run_id: str,
    task_id: str,
    map_index: int,
    try_number: int,
    ttl_seconds: int,
    now: float | None = None,
) -> str:
    """A signed task token for one attempt (see the module docstring)."""
    if not secret:
        raise ValueError("a task token needs a signing key (LEDGERFLOW_SECRET_KEY)")
    issued = int(time.time() if now is None else now)
    claims = {
        "sub": task_subject(dag_id, run_id, task_id, map_index, try_number),
        "kind": TASK_TOKEN_KIND,
        "role": TASK_TOKEN_ROLE,
        "iat": issued,
        "exp": issued + int(ttl_seconds),
        "iss": ISSUER,
    }
    header = {"alg": "HS256", "typ": "JWT"}
    signing_input = ".".join(
        _b64(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = hmac.new(secret.encode(), signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"
