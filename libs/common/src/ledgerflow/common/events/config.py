"""Variables, connections, pools, users, API keys (``<prefix>.config``) and service liveness (``<prefix>.heartbeats``).

Part of :mod:`ledgerflow.common.events` (import from there). Only pydantic and the
standard library.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from ledgerflow.common.events._base import _Payload
from pydantic import ConfigDict, Field


# --------------------------------------------------------------------------- config facts
# On ``<prefix>.config`` (one partition), keyed ``variable:<key>`` /
# ``connection:<conn_id>``; written by the API (ADR 0006). Secret fields hold Fernet
# ciphertext (``LEDGERFLOW_FERNET_KEY``), never plaintext.
class VariableSet(_Payload):
    """A variable was created or replaced. ``value`` is the Fernet ciphertext of its
    string value (JSON values are stored as their JSON text, as Airflow does).
    ``is_secret`` hides the value like a sensitive key does (ledgerflow's addition)."""

    type: Literal["VariableSet"] = "VariableSet"
    key: str = Field(min_length=1)
    value: str
    is_encrypted: bool = True
    description: str | None = None
    is_secret: bool = False
    set_by: str | None = None


class VariableDeleted(_Payload):
    type: Literal["VariableDeleted"] = "VariableDeleted"
    key: str = Field(min_length=1)
    deleted_by: str | None = None


class ConnectionSet(_Payload):
    """A connection was created or replaced. ``password`` and ``extra`` (Airflow's JSON
    text) are Fernet ciphertext or null. ``schema`` keeps Airflow's field name on the
    wire; in Python it is ``schema_`` (``schema`` would shadow pydantic's)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    type: Literal["ConnectionSet"] = "ConnectionSet"
    conn_id: str = Field(min_length=1)
    conn_type: str
    description: str | None = None
    host: str | None = None
    schema_: str | None = Field(default=None, alias="schema")
    login: str | None = None
    password: str | None = None
    port: int | None = None
    extra: str | None = None
    set_by: str | None = None


class ConnectionDeleted(_Payload):
    type: Literal["ConnectionDeleted"] = "ConnectionDeleted"
    conn_id: str = Field(min_length=1)
    deleted_by: str | None = None


class PoolSet(_Payload):
    """A pool was created or changed (key ``pool:<name>``). ``default_pool`` has 128
    slots until set. ``include_deferred`` is kept for Airflow parity (nothing defers)."""

    type: Literal["PoolSet"] = "PoolSet"
    name: str = Field(min_length=1, max_length=256)
    slots: int = Field(ge=-1, description="-1: unlimited (Airflow's convention)")
    description: str | None = None
    include_deferred: bool = False
    set_by: str | None = None


class PoolDeleted(_Payload):
    type: Literal["PoolDeleted"] = "PoolDeleted"
    name: str = Field(min_length=1)
    deleted_by: str | None = None


# --------------------------------------------------------------------------- users and API keys
# Also on ``<prefix>.config``, keyed ``user:<username>`` / ``apikey:<key_id>``; written by
# the API (``/api/v2/users``, ``/api/v2/apiKeys``). Secrets are argon2id hashes (PHC
# strings), never the password or key itself.
Role = Literal["viewer", "user", "op", "admin"]
"""Access roles, weakest first: each role may do everything the one before it may."""

ROLES: tuple[Role, ...] = ("viewer", "user", "op", "admin")


class UserCreated(_Payload):
    """A user account was created. ``password_hash`` is an argon2id hash (null: the user
    cannot log in with a password). ``by`` is who created it."""

    type: Literal["UserCreated"] = "UserCreated"
    username: str = Field(min_length=1)
    role: Role
    password_hash: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    active: bool = True
    by: str | None = None


class UserUpdated(_Payload):
    """A user account changed: the payload is the account's whole new state (so the
    last ``UserCreated``/``UserUpdated`` of a key is the account)."""

    type: Literal["UserUpdated"] = "UserUpdated"
    username: str = Field(min_length=1)
    role: Role
    password_hash: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    active: bool = True
    by: str | None = None


class UserDeleted(_Payload):
    type: Literal["UserDeleted"] = "UserDeleted"
    username: str = Field(min_length=1)
    by: str | None = None


class ApiKeyCreated(_Payload):
    """An API key for an integration. The key itself (``lfk_<key_id>_<secret>``) is
    shown once to its creator; only the argon2id hash of the secret is kept."""

    type: Literal["ApiKeyCreated"] = "ApiKeyCreated"
    key_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    role: Role
    secret_hash: str
    created_by: str | None = None
    expires_at: datetime | None = None


class ApiKeyRevoked(_Payload):
    type: Literal["ApiKeyRevoked"] = "ApiKeyRevoked"
    key_id: str = Field(min_length=1)
    revoked_by: str | None = None


# --------------------------------------------------------------------------- liveness
class ServiceHeartbeat(_Payload):
    """A service instance is alive (``<prefix>.heartbeats``, keyed by instance id, kept
    one day). Schedulers, executors and projectors send one every
    ``LEDGERFLOW_SERVICE_HEARTBEAT_SECONDS``; the API's ``/health`` lists the instances
    heard from recently, which the UI's health indicator shows. Not history: nothing is
    derived from these but "who is alive now"."""

    type: Literal["ServiceHeartbeat"] = "ServiceHeartbeat"
    service: Literal["scheduler", "executor", "projector"]
    instance_id: str = Field(min_length=1)
    hostname: str
    pid: int
    started_at: datetime
    at: datetime
    interval_seconds: float = Field(gt=0)
    details: dict[str, Any] = Field(default_factory=dict)
