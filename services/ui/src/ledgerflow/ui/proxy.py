"""Forward ``/api/*`` and ``/auth/*`` to the API, so the browser talks to one origin.

Responses are streamed back as they arrive (raw bytes, headers kept), which a later
live log tail or server-sent events can rely on.
"""

from __future__ import annotations

import logging

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

logger = logging.getLogger(__name__)

# Headers that describe one hop, not the message (RFC 9110 section 7.6.1), plus the ones
# httpx and Starlette compute themselves for the new hop.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


def _end_to_end(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in headers if k.decode("latin-1").lower() not in _HOP_BY_HOP]


async def forward(request: Request, client: httpx.AsyncClient) -> Response:
    """Send ``request`` on to the API with the same method, path, query, headers, body."""
    url = httpx.URL(path=request.url.path, query=request.url.query.encode("utf-8"))
    headers = _end_to_end(request.headers.raw)
    if request.client is not None:
        headers.append((b"x-forwarded-for", request.client.host.encode("latin-1")))
    headers.append((b"x-forwarded-proto", request.url.scheme.encode("latin-1")))
    headers.append((b"x-forwarded-host", request.headers.get("host", "").encode("latin-1")))
    upstream_request = client.build_request(
        request.method, url, headers=headers, content=await request.body()
    )
    try:
        upstream = await client.send(upstream_request, stream=True)
    except httpx.RequestError as exc:
        logger.warning("API unreachable for %s %s: %s", request.method, request.url.path, exc)
        return JSONResponse(
            {"detail": f"the API at {client.base_url} is unreachable: {exc!s}"},
            status_code=502,
        )
    response = StreamingResponse(
        upstream.aiter_raw(),
        status_code=upstream.status_code,
        background=BackgroundTask(upstream.aclose),
    )
    # Raw header list keeps repeated headers (set-cookie) and the content-encoding of the
    # raw bytes we pass through.
    response.raw_headers = _end_to_end(upstream.headers.raw)
    return response
