"""Bodies of the variable and connection endpoints, in Airflow REST API v2's shapes
(``airflow/api_fastapi/core_api/datamodels/{variables,connections,common}.py``).

ledgerflow adds one field: ``is_secret`` on variables, which hides a value like a
sensitive key name does. ``team_name`` is accepted (and must be null: ledgerflow has no
multi-team mode, like Airflow's default).
"""

from __future__ import annotations

import json
from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

ID_LEN = 250  # Airflow's key length limit


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _no_team(value: str | None) -> str | None:
    if value is not None:
        raise ValueError(
            "team_name cannot be set: ledgerflow has no multi-team mode (leave it null)"
        )
    return value


# --------------------------------------------------------------------------- variables
class VariableBody(_Body):
    """``POST /variables`` and ``PATCH /variables/{key}``. A value that is not a string
    is stored as its JSON text (so ``Variable.get(key, deserialize_json=True)`` works)."""

    key: str = Field(min_length=1, max_length=ID_LEN)
    value: JsonValue
    description: str | None = None
    team_name: str | None = Field(default=None, max_length=50)
    is_secret: bool = False

    _team = field_validator("team_name")(_no_team)

    def value_text(self) -> str:
        return self.value if isinstance(self.value, str) else json.dumps(self.value)


class VariableResponse(BaseModel):
    key: str
    value: str | None
    description: str | None
    is_encrypted: bool
    team_name: str | None = None
    is_secret: bool = False


class VariableCollectionResponse(BaseModel):
    variables: list[VariableResponse]
    total_entries: int


# --------------------------------------------------------------------------- connections
class ConnectionBody(_Body):
    """``POST /connections`` and ``PATCH /connections/{connection_id}``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    connection_id: str = Field(max_length=200, pattern=r"^[\w.-]+$")
    conn_type: str = Field(min_length=1)
    description: str | None = None
    host: str | None = None
    login: str | None = None
    schema_: str | None = Field(default=None, alias="schema")
    port: int | None = None
    password: str | None = None
    extra: str | None = None
    team_name: str | None = Field(default=None, max_length=50)

    _team = field_validator("team_name")(_no_team)

    @field_validator("extra")
    @classmethod
    def _extra_is_a_json_object(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if v == "":
            return "{}"  # Airflow's backward compatibility: "" means no extras
        try:
            parsed = json.loads(v)
        except ValueError:
            raise ValueError(
                "The `extra` field must be a valid JSON object (e.g., {'key': 'value'}), "
                "but encountered non-JSON in `extra` field"
            ) from None
        if not isinstance(parsed, dict):
            raise ValueError(
                "The `extra` field must be a valid JSON object (e.g., {'key': 'value'})"
            )
        return v


class ConnectionResponse(BaseModel):
    """A connection as the API shows it: ``password`` is ``***`` when set (never the
    value) and the sensitive fields of ``extra`` are ``***``."""

    model_config = ConfigDict(populate_by_name=True)

    connection_id: str
    conn_type: str
    description: str | None
    host: str | None
    login: str | None
    schema_: str | None = Field(alias="schema")
    port: int | None
    password: str | None
    extra: str | None
    team_name: str | None = None


class ConnectionCollectionResponse(BaseModel):
    connections: list[ConnectionResponse]
    total_entries: int


class ConnectionTestResponse(BaseModel):
    status: bool
    message: str


# --------------------------------------------------------------------------- bulk
T = TypeVar("T")


class BulkCreateAction(_Body, Generic[T]):
    action: Literal["create"]
    entities: list[T]
    action_on_existence: Literal["fail", "skip", "overwrite"] = "fail"


class BulkUpdateAction(_Body, Generic[T]):
    action: Literal["update"]
    entities: list[T]
    update_mask: list[str] | None = None
    action_on_non_existence: Literal["fail", "skip"] = "fail"


class BulkDeleteAction(_Body):
    action: Literal["delete"]
    entities: list[str]
    action_on_non_existence: Literal["fail", "skip"] = "fail"


class BulkBody(_Body, Generic[T]):
    """``PATCH /variables`` and ``PATCH /connections``: a list of actions, applied in order."""

    actions: list[
        Annotated[
            BulkCreateAction[T] | BulkUpdateAction[T] | BulkDeleteAction,
            Field(discriminator="action"),
        ]
    ]


class BulkActionResponse(BaseModel):
    success: list[str] = Field(default_factory=list)
    errors: list[dict[str, object]] = Field(default_factory=list)


class BulkResponse(BaseModel):
    create: BulkActionResponse | None = None
    update: BulkActionResponse | None = None
    delete: BulkActionResponse | None = None
