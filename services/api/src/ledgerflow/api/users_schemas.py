"""Bodies of ``/api/v2/users`` and ``/api/v2/apiKeys``.

Users follow Airflow's FAB auth manager (``/auth/fab/v1/users``): ``username``,
``email``, ``first_name``, ``last_name``, ``roles: [{"name"}]``, ``active``,
``created_on``, ``changed_on``. ledgerflow has one role per user, so it also answers and
accepts ``role`` (``viewer``, ``user``, ``op``, ``admin``; Airflow's ``Viewer``/``User``/
``Op``/``Admin`` are read case-insensitively). Passwords are never returned.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ledgerflow.api.auth import Role, parse_role
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,255}$"
"""No ``:``, so a username never looks like ``apikey:<name>`` in the audit log."""
MIN_PASSWORD_LENGTH = 8


class RoleRef(BaseModel):
    name: str


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _one_role(data: Any) -> Any:
    """Fold Airflow's ``roles: [{"name"}]`` into ``role`` (exactly one role)."""
    if not isinstance(data, dict) or data.get("roles") is None:
        return data
    roles = data["roles"]
    names = {
        str(r.get("name") if isinstance(r, dict) else r).lower()
        for r in (roles if isinstance(roles, list) else [roles])
    }
    if len(names) != 1:
        raise ValueError("a ledgerflow user has exactly one role: give one in 'roles'")
    role = names.pop()
    if data.get("role") is not None and str(data["role"]).lower() != role:
        raise ValueError("'role' and 'roles' disagree")
    return {**{k: v for k, v in data.items() if k != "roles"}, "role": role}


class UserBody(_Body):
    """``POST /users``."""

    username: str = Field(pattern=USERNAME_PATTERN)
    password: str = Field(min_length=MIN_PASSWORD_LENGTH)
    role: Role
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    active: bool = True

    _roles = model_validator(mode="before")(_one_role)

    @field_validator("role", mode="before")
    @classmethod
    def _role(cls, value: Any) -> Any:
        return parse_role(value) if isinstance(value, str) else value


class UserPatchBody(_Body):
    """``PATCH /users/{username}``: the fields given (or named in ``update_mask``)."""

    username: str | None = None  # accepted (Airflow sends it); must match the path
    password: str | None = Field(default=None, min_length=MIN_PASSWORD_LENGTH)
    role: Role | None = None
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    active: bool | None = None

    _roles = model_validator(mode="before")(_one_role)

    @field_validator("role", mode="before")
    @classmethod
    def _role(cls, value: Any) -> Any:
        return parse_role(value) if isinstance(value, str) else value


class UserResponse(BaseModel):
    username: str
    role: Role
    roles: list[RoleRef]
    email: str | None
    first_name: str | None
    last_name: str | None
    active: bool
    created_on: datetime | None
    changed_on: datetime | None
    created_by: str | None = None
    changed_by: str | None = None


class UserCollectionResponse(BaseModel):
    users: list[UserResponse]
    total_entries: int


class ApiKeyBody(_Body):
    """``POST /apiKeys``: a key for an integration, with a role and an optional expiry
    (``expires_at``, or ``expires_in_days``)."""

    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\s:][^:]*$")
    role: Role
    expires_at: datetime | None = None
    expires_in_days: float | None = Field(default=None, gt=0)

    @field_validator("role", mode="before")
    @classmethod
    def _role(cls, value: Any) -> Any:
        return parse_role(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_expiry(self) -> ApiKeyBody:
        if self.expires_at is not None and self.expires_in_days is not None:
            raise ValueError("give expires_at or expires_in_days, not both")
        if self.expires_at is not None and self.expires_at.tzinfo is None:
            raise ValueError("expires_at must carry a UTC offset")
        return self


class ApiKeyResponse(BaseModel):
    key_id: str
    name: str
    role: Role
    created_at: datetime
    created_by: str | None
    expires_at: datetime | None
    revoked_at: datetime | None = None
    revoked_by: str | None = None


class ApiKeyCreatedResponse(ApiKeyResponse):
    key: str = Field(description="The key (lfk_<key_id>_<secret>). Shown once: store it now.")


class ApiKeyCollectionResponse(BaseModel):
    api_keys: list[ApiKeyResponse]
    total_entries: int
