"""Forward ``/api/*`` and ``/auth/*`` to the API, so the browser talks to one origin.

Responses are streamed back as they arrive (raw bytes, headers kept, nothing buffered),
which the live event stream (server-sent events) relies on.

The browser's ``EventSource`` cannot set request headers, so for the event stream only
the page passes its token as ``?access_token=`` and its resume position as
``?last_event_id=``; :func:`forward` moves them into ``Authorization`` and
``Last-Event-ID`` and strips them from the query, so the API sees an ordinary request
(and never logs the token in a URL). ``EventSource``'s own reconnects send
``Last-Event-ID`` themselves, which wins over the query value.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl, urlencode

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


EVENT_STREAM_SUFFIX = "/events/stream"
_STREAM_QUERY_HEADERS = {"access_token": b"authorization", "last_event_id": b"last-event-id"}


def _stream_credentials(
    path: str, query: str, headers: list[tuple[bytes, bytes]]
) -> tuple[str, list[tuple[bytes, bytes]]]:
    """For the event stream: query ``access_token``/``last_event_id`` become headers
    (unless the request already has that header), and leave the query."""
    if not path.endswith(EVENT_STREAM_SUFFIX):
        return query, headers
    present = {k.lower() for k, _ in headers}
    kept: list[tuple[str, str]] = []
    for key, value in parse_qsl(query, keep_blank_values=True):
        header = _STREAM_QUERY_HEADERS.get(key)
        if header is None:
            kept.append((key, value))
        elif header not in present and value:
            encoded = f"Bearer {value}" if header == b"authorization" else value
            headers.append((header, encoded.encode("latin-1")))
            present.add(header)
    return urlencode(kept), headers


async def forward(request: Request, client: httpx.AsyncClient) -> Response:
    """Send ``request`` on to the API with the same method, path, query, headers, body."""
    query, headers = _stream_credentials(
        request.url.path, request.url.query, _end_to_end(request.headers.raw)
    )
    url = httpx.URL(path=request.url.path, query=query.encode("utf-8"))
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
