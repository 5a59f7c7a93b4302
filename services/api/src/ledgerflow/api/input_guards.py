"""Input no route should see: NUL characters.

Postgres text and jsonb cannot hold U+0000, so a NUL in a path, a query parameter or a
JSON body would fail a query (a 500) or, once published, an event the projector cannot
store. Every ``/api/v2`` request is checked first and refused with a 422 naming where.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.exceptions import RequestValidationError

_MSG = "NUL characters are not allowed"


def _error(loc: tuple[str, ...], value: str) -> RequestValidationError:
    return RequestValidationError(
        [{"type": "value_error", "loc": loc, "msg": _MSG, "input": value.replace("\x00", "")}]
    )


async def reject_nul(request: Request) -> None:
    """A router dependency: 422 for a NUL anywhere in the request's text."""
    for name, value in request.path_params.items():
        if isinstance(value, str) and "\x00" in value:
            raise _error(("path", name), value)
    for name, value in request.query_params.multi_items():
        if "\x00" in value or "\x00" in name:
            raise _error(("query", name.replace("\x00", "")), value)
    if request.method in ("POST", "PUT", "PATCH"):
        body = await request.body()  # cached: the route reads the same bytes
        if b"\\u0000" in body or b"\x00" in body:
            raise _error(("body",), "")
