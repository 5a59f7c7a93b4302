"""``POST /api/v2/dagFiles``: submit a DAG file; each DAG in it becomes a new version.

Template files the DAG uses (``.sql``, ``.sh``, ...) travel with it: as
``extra_files: {relative path: text}`` in the JSON body, or as repeated multipart
``extra_files`` parts whose file names are their paths relative to the DAG file's
directory. They go into ``DagVersionPublished.extra_files`` for the task runner; the
parse does not need them (templates are rendered at run time).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from ledgerflow.api import catalog_queries, commands, dag_lifecycle
from ledgerflow.api.deps import Context, CurrentUser
from ledgerflow.api.problems import problem
from ledgerflow.api.schemas import (
    DagFileBody,
    DagFileResponse,
    DagParseErrorDetail,
    ErrorResponse,
    PublishedDag,
)
from ledgerflow.common.dagparse import DagParseError, parse_dag_source
from pydantic import ValidationError
from starlette.datastructures import UploadFile

router = APIRouter(tags=["DAG"])

MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_EXTRA_FILES_BYTES = 1024 * 1024  # all template files of one submission together
MAX_EXTRA_FILES = 500
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")

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
                        "extra_files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "Template files; each part's file name is its"
                            " path relative to the DAG file's directory.",
                        },
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


def _bad_extra_file(path: str, msg: str) -> RequestValidationError:
    return RequestValidationError(
        [{"type": "value_error", "loc": ("body", "extra_files", path), "msg": msg, "input": path}]
    )


def normalized_relpath(path: str) -> str:
    """``path`` as a clean relative path (``./a//b.sql`` -> ``a/b.sql``); ValueError
    for an absolute path, a ``..`` segment, a backslash or an empty name."""
    if not path or "\x00" in path:
        raise ValueError("the path is empty or contains a NUL character")
    if "\\" in path:
        raise ValueError("use forward slashes in template file paths")
    if path.startswith("/") or _WINDOWS_DRIVE.match(path):
        raise ValueError("template file paths must be relative to the DAG file's directory")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError("template file paths must not contain '..'")
    if not parts:
        raise ValueError("the path names no file")
    return "/".join(parts)


def checked_extra_files(files: dict[str, str]) -> dict[str, str]:
    """The template files with normalized paths, or a 422 naming the offending one."""
    if len(files) > MAX_EXTRA_FILES:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("body", "extra_files"),
                    "msg": f"{len(files)} template files; the limit is {MAX_EXTRA_FILES}",
                    "input": None,
                }
            ]
        )
    out: dict[str, str] = {}
    for path, text in files.items():
        try:
            clean = normalized_relpath(path)
        except ValueError as exc:
            raise _bad_extra_file(path, str(exc)) from None
        if clean in out:
            raise _bad_extra_file(path, f"{clean!r} is given twice")
        out[clean] = text
    total = sum(len(t.encode()) for t in out.values())
    if total > MAX_EXTRA_FILES_BYTES:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("body", "extra_files"),
                    "msg": (
                        f"the template files are {total} bytes together; the limit is "
                        f"{MAX_EXTRA_FILES_BYTES} bytes"
                    ),
                    "input": None,
                }
            ]
        )
    return out


async def _read_extra_uploads(uploads: list[Any]) -> dict[str, str]:
    files: dict[str, str] = {}
    for upload in uploads:
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise _missing("extra_files", "Each extra file needs a file name", "value_error")
        raw = await upload.read(MAX_EXTRA_FILES_BYTES + 1)
        if len(raw) > MAX_EXTRA_FILES_BYTES:
            raise _bad_extra_file(
                upload.filename, f"larger than the {MAX_EXTRA_FILES_BYTES} bytes allowed"
            )
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _bad_extra_file(upload.filename, "The file is not UTF-8 text") from None
        if upload.filename in files:
            raise _bad_extra_file(upload.filename, "given twice")
        files[upload.filename] = text
    return files


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
        extra = await _read_extra_uploads(form.getlist("extra_files"))
        body = DagFileBody(filename=filename, content=text, extra_files=extra)
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
    return body.model_copy(update={"extra_files": checked_extra_files(body.extra_files)})


@router.post(
    "/dagFiles",
    status_code=status.HTTP_201_CREATED,
    response_model=DagFileResponse,
    responses={
        422: {
            "description": "The file does not parse (``detail``: message, filename, lineno,"
            " kind) or the request is invalid (``detail``: FastAPI's list of errors)",
            "model": ErrorResponse,
        }
    },
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
        # Recorded as an import error (GET /importErrors) until the file parses again.
        failure = dag_lifecycle.import_failed(
            filename=body.filename,
            message=exc.message,
            kind=exc.kind,
            lineno=exc.lineno,
            submitted_by=user,
            now=datetime.now(UTC),
        )
        await ctx.producer.send(ctx.settings.topics.dags, failure)
        return problem(422, detail.model_dump())
    now = datetime.now(UTC)
    envelopes = [
        commands.dag_version(
            dag,
            content=body.content,
            filename=body.filename,
            submitted_by=user,
            now=now,
            extra_files=body.extra_files,
        )
        for dag in dags
    ]
    async with ctx.pool.acquire() as conn:
        # A DAG deleted before comes back as a new publication (see dag_lifecycle).
        envelopes = [
            dag_lifecycle.republished(
                e, await catalog_queries.latest_deletion_id(conn, e.data.dag_id)
            )
            for e in envelopes
        ]
        had_import_error = await catalog_queries.has_import_error(conn, body.filename)
    for envelope in envelopes:
        await ctx.producer.send(ctx.settings.topics.dags, envelope)
    if had_import_error:  # the file parses now: its import error is resolved
        resolved = dag_lifecycle.imported(
            filename=body.filename,
            dag_ids=[e.data.dag_id for e in envelopes],
            submitted_by=user,
            now=now,
        )
        await ctx.producer.send(ctx.settings.topics.dags, resolved)
    return DagFileResponse(
        dags=[PublishedDag(dag_id=e.data.dag_id, version_id=e.data.version_id) for e in envelopes]
    )
