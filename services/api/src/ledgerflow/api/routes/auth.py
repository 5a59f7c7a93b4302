"""``POST /auth/token``: trade a username and password for a bearer token (Airflow 3's
simple auth manager shape: 201 ``{"access_token"}``).

Users come from the projection (argon2id hashes); the bootstrap admin from
``LEDGERFLOW_ADMIN_USERNAME``/``LEDGERFLOW_ADMIN_PASSWORD``. Repeated failures for a
username or a client address answer 429 with ``Retry-After`` (``login_throttle``).
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from ledgerflow.api.access import TooManyAttempts
from ledgerflow.api.auth import InvalidToken
from ledgerflow.api.deps import Access, Context
from ledgerflow.api.schemas import ErrorResponse, TokenRequest, TokenResponse

router = APIRouter(tags=["Auth"])


@router.post(
    "/auth/token",
    response_model=TokenResponse,
    status_code=status.HTTP_201_CREATED,
    responses={401: {"model": ErrorResponse}, 429: {"model": ErrorResponse}},
)
async def create_token(
    body: TokenRequest, request: Request, ctx: Context, access: Access
) -> TokenResponse:
    client = request.client.host if request.client is not None else None
    try:
        token = await access.login(ctx.pool, body.username, body.password, client=client)
    except TooManyAttempts as exc:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail=f"Too many failed logins: try again in {exc.retry_after} seconds",
            headers={"Retry-After": str(exc.retry_after)},
        ) from None
    except InvalidToken:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, detail="Invalid username or password"
        ) from None
    return TokenResponse(access_token=token)
