"""FastAPI dependencies: the per-app context, a database connection, who is calling and
what they may do.

Access control (issue 5) works in two layers, so a route nobody thought about is still
protected:

- :func:`authorize` is a dependency of the whole ``/api/v2`` router. It authenticates
  the caller (401 without valid credentials) and, unless the route states its own
  requirement, applies the default: ``viewer`` for ``GET``, ``user`` for every other
  method.
- A route (or a router) states its own requirement with ``dependencies=[require(role)]``
  (or :func:`writes_require` for "reads: viewer, writes: ``role``"). A stated
  requirement replaces the default, so it can be stricter (``admin`` for ``DELETE``) or
  looser (a ``POST`` that only reads). :data:`PUBLIC` marks a route without auth.

``tests/integration/test_api_access.py`` walks every route in the OpenAPI document with
every role against one table; a new route missing from that table fails it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from ledgerflow.api.access import AccessControl
from ledgerflow.api.auth import API_KEY_PREFIX, Authenticator, InvalidToken, Principal, Role
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


def get_access(request: Request) -> AccessControl:
    access: AccessControl = request.app.state.access
    return access


Access = Annotated[AccessControl, Depends(get_access)]

# --------------------------------------------------------------------------- who is calling
_bearer = HTTPBearer(
    auto_error=False,
    description="A token from POST /auth/token, or an API key (lfk_<id>_<secret>)",
)
_api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="An API key (lfk_<id>_<secret>)"
)
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
ApiKeyHeader = Annotated[str | None, Depends(_api_key_header)]

_CHALLENGE = {"WWW-Authenticate": "Bearer"}
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers=_CHALLENGE)


async def _authenticate(
    request: Request, credentials: HTTPAuthorizationCredentials | None, api_key: str | None
) -> Principal:
    """The caller, once per request (kept on ``request.state.principal``)."""
    known: Principal | None = getattr(request.state, "principal", None)
    if known is not None:
        return known
    access = get_access(request)
    pool = get_context(request).pool
    token = credentials.credentials if credentials is not None else None
    try:
        if api_key is not None:
            principal = await access.principal_for_api_key(pool, api_key)
        elif token is not None and token.startswith(API_KEY_PREFIX):
            principal = await access.principal_for_api_key(pool, token)
        elif token is not None:
            principal = await access.principal_for_token(pool, token)
        else:
            raise _unauthorized("Not authenticated")
    except InvalidToken as exc:
        what = "API key" if api_key is not None or (token or "").startswith("lfk_") else "token"
        raise _unauthorized(f"Invalid {what}: {exc}") from None
    request.state.principal = principal
    return principal


async def get_principal(request: Request, credentials: Bearer, api_key: ApiKeyHeader) -> Principal:
    """The authenticated caller; 401 without valid credentials."""
    return await _authenticate(request, credentials, api_key)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def get_current_user(principal: CurrentPrincipal) -> str:
    """The name audit fields record: the username, or ``apikey:<name>``."""
    return principal.name


CurrentUser = Annotated[str, Depends(get_current_user)]


def principal_name(request: Request) -> str:
    """Who caused this request's writes (for ``triggered_by``/``set_by``/... fields): the
    username, or ``apikey:<name>``. Only valid under ``/api/v2`` (after authentication)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        raise RuntimeError("principal_name() called on a request that was not authenticated")
    return principal.name


# --------------------------------------------------------------------------- what they may do
def _forbidden(principal: Principal, need: str) -> HTTPException:
    return HTTPException(
        status.HTTP_403_FORBIDDEN,
        detail=f"Forbidden: this needs the {need} role ({principal.name} has {principal.role})",
    )


def _refuse_writes_by_read_only(principal: Principal, method: str) -> None:
    """A task token reads other runs' states; it never writes, even where a route would
    let a viewer (ADR 0009)."""
    if principal.read_only and method not in READ_METHODS:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"Forbidden: {principal.name} is a task token, which may only read",
        )


@dataclass(frozen=True)
class Requirement:
    """A dependency: the caller needs at least ``role`` (for ``methods``, or any)."""

    role: Role
    methods: frozenset[str] | None = None

    def applies_to(self, method: str) -> bool:
        return self.methods is None or method in self.methods

    async def __call__(self, request: Request, credentials: Bearer, api_key: ApiKeyHeader) -> None:
        if not self.applies_to(request.method):
            return
        principal = await _authenticate(request, credentials, api_key)
        _refuse_writes_by_read_only(principal, request.method)
        if not principal.allows(self.role):
            raise _forbidden(principal, self.role)


def require(role: Role, *, methods: Collection[str] | None = None) -> Any:
    """``dependencies=[require("op")]``: the route needs at least this role (for these
    HTTP methods only, when given). Replaces the router's default requirement."""
    return Depends(Requirement(role, None if methods is None else frozenset(methods)))


def writes_require(role: Role) -> Any:
    """For a router: reads need ``viewer``, writes (POST/PUT/PATCH/DELETE) need ``role``."""
    return require(role, methods=WRITE_METHODS)


def _public() -> None:
    """Marker: the route needs no credentials (health, version)."""


PUBLIC: Any = Depends(_public)
"""``dependencies=[PUBLIC]``: no authentication, even under the ``/api/v2`` router."""


def _stated_requirements(request: Request) -> tuple[bool, list[Requirement]]:
    route = request.scope.get("route")
    deps = [d.dependency for d in getattr(route, "dependencies", ())]
    public = any(d is _public for d in deps)
    return public, [d for d in deps if isinstance(d, Requirement)]


async def authorize(request: Request, credentials: Bearer, api_key: ApiKeyHeader) -> None:
    """The ``/api/v2`` router's dependency: authenticate, then apply the default
    requirement unless the route states its own (see the module docstring)."""
    public, stated = _stated_requirements(request)
    if public:
        return
    principal = await _authenticate(request, credentials, api_key)
    _refuse_writes_by_read_only(principal, request.method)
    if any(r.applies_to(request.method) for r in stated):
        return  # the stated requirement checks itself (it runs after this)
    need: Role = "viewer" if request.method in READ_METHODS else "user"
    if not principal.allows(need):
        raise _forbidden(principal, need)
