"""``POST /api/v2/dagFiles``: submit a DAG file; each DAG in it becomes a new version."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from ledgerflow.api import commands
from ledgerflow.api.deps import Context, CurrentUser
from ledgerflow.api.schemas import DagFileBody, DagFileResponse, DagParseErrorDetail, PublishedDag
from ledgerflow.common.dagparse import DagParseError, parse_dag_source
from pydantic import ValidationError
from starlette.datastructures import UploadFile

router = APIRouter(tags=["DAG"])

MAX_FILE_BYTES = 4 * 1024 * 1024

_REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": DagFileBody.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "filename": {"type": "string"},
                    },
                }
            },
        },
    }
}


def _missing(
    field: str, msg: str = "Field required", kind: str = "missing"
) -> RequestValidationError:
    return RequestValidationError(
        [{"type": kind, "loc": ("body", field), "msg": msg, "input": None}]
    )


async def _read_dag_file(request: Request) -> DagFileBody:
    """The file from a JSON body ``{"filename", "content"}`` or a multipart ``file``."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise _missing("file")
        raw = await upload.read(MAX_FILE_BYTES + 1)
        name = form.get("filename")
        filename = name if isinstance(name, str) and name else upload.filename
        if not filename:
            raise _missing("filename")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _missing("file", "The file is not UTF-8 text", "value_error") from None
        body = DagFileBody(filename=filename, content=text)
    else:
        try:
            body = DagFileBody.model_validate_json(await request.body())
        except ValidationError as exc:
            errors = [dict(e, loc=("body", *e["loc"])) for e in exc.errors(include_url=False)]
            raise RequestValidationError(errors) from None
    if len(body.content.encode()) > MAX_FILE_BYTES:
        raise HTTPException(
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            f"DAG files are limited to {MAX_FILE_BYTES} bytes",
        )
    return body


@router.post(
    "/dagFiles",
    status_code=status.HTTP_201_CREATED,
    response_model=DagFileResponse,
    responses={422: {"description": "The file does not parse", "model": DagParseErrorDetail}},
    openapi_extra=_REQUEST_BODY,
)
async def submit_dag_file(request: Request, ctx: Context, user: CurrentUser) -> Any:
    """Parses the file in a child process (with a time limit) and publishes one
    ``DagVersionPublished`` per DAG in it. A file that does not parse publishes nothing
    and answers 422 with the message, line number and kind of error."""
    body = await _read_dag_file(request)
    try:
        dags = await parse_dag_source(
            body.content, body.filename, timeout=ctx.settings.parse_timeout_seconds
        )
    except DagParseError as exc:
        detail = DagParseErrorDetail(
            message=exc.message, filename=exc.filename, lineno=exc.lineno, kind=exc.kind
        )
        return JSONResponse({"detail": detail.model_dump()}, status_code=422)
    now = datetime.now(UTC)
    envelopes = [
        commands.dag_version(
            dag, content=body.content, filename=body.filename, submitted_by=user, now=now
        )
        for dag in dags
    ]
    for envelope in envelopes:
        await ctx.producer.send(ctx.settings.topics.dags, envelope)
    return DagFileResponse(
        dags=[PublishedDag(dag_id=e.data.dag_id, version_id=e.data.version_id) for e in envelopes]
    )
