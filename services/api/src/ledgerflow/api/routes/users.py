"""Users (``/api/v2/users``) and API keys (``/api/v2/apiKeys``); admin only.

Airflow 3 serves users from its FAB auth manager at ``/auth/fab/v1/users``; ledgerflow
has its own auth and serves the same bodies under ``/api/v2/users``. Writes publish
``UserCreated``/``UserUpdated``/``UserDeleted``/``ApiKeyCreated``/``ApiKeyRevoked`` on
the config topic and answer at once (the projection follows; a new user can log in once
the projector has the fact). Passwords and key secrets are hashed (argon2id) here, before
anything is written; the plain key is in the ``POST /apiKeys`` answer and nowhere else.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response, status
from ledgerflow.api import users_store
from ledgerflow.api.auth import hash_secret, make_api_key
from ledgerflow.api.deps import Access, Connection, Context, require
from ledgerflow.api.routes.variables import Publisher, mark_written
from ledgerflow.api.schemas import ErrorResponse
from ledgerflow.api.users_schemas import (
    ApiKeyBody,
    ApiKeyCollectionResponse,
    ApiKeyCreatedResponse,
    ApiKeyResponse,
    RoleRef,
    UserBody,
    UserCollectionResponse,
    UserPatchBody,
    UserResponse,
)
from ledgerflow.api.users_store import StoredApiKey, StoredUser

router = APIRouter(prefix="/users", tags=["User"], dependencies=[require("admin")])
api_keys_router = APIRouter(prefix="/apiKeys", tags=["API Key"], dependencies=[require("admin")])

Limit = Annotated[int, Query(ge=0, le=1000)]
Offset = Annotated[int, Query(ge=0)]
OrderBy = Annotated[list[str] | None, Query()]
UpdateMask = Annotated[list[str] | None, Query()]
_PATCHABLE = ("password", "role", "email", "first_name", "last_name", "active")


def _user_response(user: StoredUser) -> UserResponse:
    return UserResponse(
        username=user.username,
        role=user.role,
        roles=[RoleRef(name=user.role.capitalize())],
        email=user.email,
        first_name=user.first_name,
        last_name=user.last_name,
        active=user.active,
        created_on=user.created_at,
        changed_on=user.changed_at,
        created_by=user.created_by,
        changed_by=user.changed_by,
    )


def _user_not_found(username: str) -> HTTPException:
    return HTTPException(
        status.HTTP_404_NOT_FOUND, f"The User with username `{username}` was not found"
    )


# --------------------------------------------------------------------------- users
@router.get("", response_model=UserCollectionResponse)
async def list_users(
    conn: Connection, limit: Limit = 100, offset: Offset = 0, order_by: OrderBy = None
) -> UserCollectionResponse:
    """Users of the projection (the bootstrap admin from the environment is not one)."""
    users, total = await users_store.list_users(
        conn, limit=limit, offset=offset, order_by=order_by or ["username"]
    )
    return UserCollectionResponse(users=[_user_response(u) for u in users], total_entries=total)


@router.post(
    "",
    response_model=UserResponse,
    status_code=status.HTTP_201_CREATED,
    responses={409: {"model": ErrorResponse}},
)
async def post_user(
    body: UserBody, conn: Connection, ctx: Context, publisher: Publisher, response: Response
) -> UserResponse:
    if ctx.auth.is_bootstrap(body.username) or await users_store.get_user(conn, body.username):
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"The User with username `{body.username}` already exists"
        )
    password_hash = await asyncio.to_thread(hash_secret, body.password)
    fields = body.model_dump(exclude={"password"}) | {"password_hash": password_hash}
    await users_store.publish_user(publisher, fields, created=True)
    mark_written(response, publisher)
    now = datetime.now(UTC)
    return _user_response(
        StoredUser(
            **fields,
            created_at=now,
            created_by=publisher.user,
            changed_at=now,
            changed_by=publisher.user,
        )
    )


@router.get("/{username}", response_model=UserResponse, responses={404: {"model": ErrorResponse}})
async def get_user(username: str, conn: Connection) -> UserResponse:
    user = await users_store.get_user(conn, username)
    if user is None:
        raise _user_not_found(username)
    return _user_response(user)


@router.patch(
    "/{username}",
    response_model=UserResponse,
    responses={400: {"model": ErrorResponse}, 404: {"model": ErrorResponse}},
)
async def patch_user(
    username: str,
    body: UserPatchBody,
    conn: Connection,
    access: Access,
    publisher: Publisher,
    response: Response,
    update_mask: UpdateMask = None,
) -> UserResponse:
    """Change the fields given in the body (or only those named in ``update_mask``)."""
    user = await users_store.get_user(conn, username)
    if user is None:
        raise _user_not_found(username)
    if body.username is not None and body.username != username:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "The username cannot be changed")
    given = body.model_dump(exclude_unset=True, exclude={"username"})
    if update_mask:
        unknown = sorted(set(update_mask) - set(_PATCHABLE))
        if unknown:
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST, f"Unknown update masks: {', '.join(unknown)}"
            )
        given = {k: v for k, v in given.items() if k in update_mask}
    if any(given.get(k, "") is None for k in ("role", "active", "password")):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "role, active and password cannot be null")
    fields: dict[str, Any] = {
        "username": user.username,
        "role": user.role,
        "password_hash": user.password_hash,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "active": user.active,
    }
    password = given.pop("password", None)
    fields.update(given)
    if password is not None:
        fields["password_hash"] = await asyncio.to_thread(hash_secret, password)
    await users_store.publish_user(publisher, fields, created=False)
    access.forget_user(username)
    mark_written(response, publisher)
    return _user_response(
        StoredUser(
            **fields,
            created_at=user.created_at,
            created_by=user.created_by,
            changed_at=datetime.now(UTC),
            changed_by=publisher.user,
        )
    )


@router.delete(
    "/{username}", status_code=status.HTTP_204_NO_CONTENT, responses={404: {"model": ErrorResponse}}
)
async def delete_user(
    username: str, conn: Connection, access: Access, publisher: Publisher
) -> Response:
    if await users_store.get_user(conn, username) is None:
        raise _user_not_found(username)
    await users_store.publish_user_deleted(publisher, username)
    access.forget_user(username)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    mark_written(response, publisher)
    return response


# --------------------------------------------------------------------------- API keys
def _key_response(key: StoredApiKey) -> ApiKeyResponse:
    return ApiKeyResponse(
        key_id=key.key_id,
        name=key.name,
        role=key.role,
        created_at=key.created_at,
        created_by=key.created_by,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
        revoked_by=key.revoked_by,
    )


def _key_not_found(key_id: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"The API key `{key_id}` was not found")


@api_keys_router.get("", response_model=ApiKeyCollectionResponse)
async def list_api_keys(
    conn: Connection,
    limit: Limit = 100,
    offset: Offset = 0,
    order_by: OrderBy = None,
    include_revoked: bool = False,
) -> ApiKeyCollectionResponse:
    keys, total = await users_store.list_api_keys(
        conn,
        limit=limit,
        offset=offset,
        order_by=order_by or ["name"],
        include_revoked=include_revoked,
    )
    return ApiKeyCollectionResponse(api_keys=[_key_response(k) for k in keys], total_entries=total)


@api_keys_router.post(
    "",
    response_model=ApiKeyCreatedResponse,
    status_code=status.HTTP_201_CREATED,
    responses={409: {"model": ErrorResponse}},
)
async def post_api_key(
    body: ApiKeyBody, conn: Connection, publisher: Publisher, response: Response
) -> ApiKeyCreatedResponse:
    """A new key, shown once in ``key`` (only its hash is kept)."""
    if await users_store.active_api_key_named(conn, body.name) is not None:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"An API key named `{body.name}` already exists"
        )
    now = datetime.now(UTC)
    expires_at = body.expires_at
    if body.expires_in_days is not None:
        expires_at = now + timedelta(days=body.expires_in_days)
    key_id, secret, key = make_api_key()
    secret_hash = await asyncio.to_thread(hash_secret, secret)
    await users_store.publish_api_key(
        publisher,
        key_id=key_id,
        name=body.name,
        role=body.role,
        secret_hash=secret_hash,
        expires_at=expires_at,
    )
    mark_written(response, publisher)
    return ApiKeyCreatedResponse(
        key_id=key_id,
        name=body.name,
        role=body.role,
        created_at=now,
        created_by=publisher.user,
        expires_at=expires_at,
        key=key,
    )


@api_keys_router.get(
    "/{key_id}", response_model=ApiKeyResponse, responses={404: {"model": ErrorResponse}}
)
async def get_api_key(key_id: str, conn: Connection) -> ApiKeyResponse:
    key = await users_store.get_api_key(conn, key_id)
    if key is None:
        raise _key_not_found(key_id)
    return _key_response(key)


@api_keys_router.delete(
    "/{key_id}", status_code=status.HTTP_204_NO_CONTENT, responses={404: {"model": ErrorResponse}}
)
async def revoke_api_key(
    key_id: str, conn: Connection, access: Access, publisher: Publisher
) -> Response:
    """Revoke the key (its row stays, with ``revoked_at``; ``?include_revoked=true``)."""
    key = await users_store.get_api_key(conn, key_id)
    if key is None or key.revoked_at is not None:
        raise _key_not_found(key_id)
    await users_store.publish_api_key_revoked(publisher, key_id)
    access.revoked(key_id)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    mark_written(response, publisher)
    return response
