"""FastAPI dependencies: the per-app context, a database connection, the current user."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

import asyncpg
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from ledgerflow.api.auth import Authenticator, InvalidToken
from ledgerflow.api.health import HealthProbe
from ledgerflow.common.kafka_io import EventProducer
from ledgerflow.common.settings import Settings


@dataclass(frozen=True)
class ApiContext:
    """Everything a request may use, owned by the app's lifespan (no module globals)."""

    settings: Settings
    pool: asyncpg.Pool
    producer: EventProducer
    auth: Authenticator
    health: HealthProbe


def get_context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


Context = Annotated[ApiContext, Depends(get_context)]


async def get_connection(ctx: Context) -> AsyncIterator[asyncpg.Connection]:
    async with ctx.pool.acquire() as conn:
        yield conn


Connection = Annotated[asyncpg.Connection, Depends(get_connection)]

_bearer = HTTPBearer(auto_error=False, description="A token from POST /auth/token")


def get_current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The user named by the request's bearer token; 401 without a valid one."""
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="Not authenticated",
            headers={"WWW-Authenticate": "Bearer"},
        )
    auth: Authenticator = request.app.state.auth
    try:
        user: str = auth.verify(credentials.credentials)
    except InvalidToken as exc:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail=f"Invalid token: {exc}",
            headers={"WWW-Authenticate": "Bearer"},
        ) from None
    return user


CurrentUser = Annotated[str, Depends(get_current_user)]
