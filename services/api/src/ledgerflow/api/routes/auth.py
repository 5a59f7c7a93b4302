"""``POST /auth/token``: trade the admin's username and password for a bearer token."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from ledgerflow.api.auth import Authenticator
from ledgerflow.api.schemas import ErrorResponse, TokenRequest, TokenResponse

router = APIRouter(tags=["Auth"])


@router.post(
    "/auth/token",
    response_model=TokenResponse,
    status_code=status.HTTP_201_CREATED,
    responses={401: {"model": ErrorResponse}},
)
async def create_token(body: TokenRequest, request: Request) -> TokenResponse:
    auth: Authenticator = request.app.state.auth
    if not auth.check_password(body.username, body.password):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="Invalid username or password")
    return TokenResponse(access_token=auth.issue(body.username))
