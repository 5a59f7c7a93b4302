"""Every error answer in one shape: ``{"detail", "status", "title", "type"}``.

``detail`` is what Airflow 3 (FastAPI) answers: a message, or for a 422 FastAPI's list of
``{"type", "loc", "msg", "input"}`` naming the field, so the Airflow client's parsing
works unchanged. ``status``, ``title`` and ``type`` are the problem fields (RFC 7807) of
Airflow 2's API, for clients and scripts written against it. Headers an exception
carries (``WWW-Authenticate``, ``Retry-After``) are kept.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

PROBLEM_TYPE = "about:blank"


def problem_body(status_code: int, detail: Any) -> dict[str, Any]:
    try:
        title = HTTPStatus(status_code).phrase
    except ValueError:
        title = "Error"
    return {"detail": detail, "status": status_code, "title": title, "type": PROBLEM_TYPE}


def problem(status_code: int, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    """An error response in the problem shape."""
    return JSONResponse(
        jsonable_encoder(problem_body(status_code, detail)),
        status_code=status_code,
        headers=headers,
    )


def add_problem_handlers(app: FastAPI) -> None:
    """HTTP errors, validation errors and unexpected exceptions as problems."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 204 or exc.status_code == 304:
            return JSONResponse(None, status_code=exc.status_code, headers=exc.headers)
        return problem(exc.status_code, exc.detail, dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{k: v for k, v in e.items() if k != "url"} for e in exc.errors()]
        return problem(422, errors)

    @app.exception_handler(asyncpg.DataError)
    @app.exception_handler(OverflowError)
    async def value_out_of_range(request: Request, exc: Exception) -> JSONResponse:
        # Postgres' "data exception" class (a number out of range, an invalid character)
        # and Python's OverflowError are caused by the values given, never by the server.
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return problem(
            422,
            [{"type": "value_error", "loc": ["request"], "msg": f"Invalid value: {message}"}],
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, f"Internal server error ({type(exc).__name__})")
