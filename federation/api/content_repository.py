"""Spec file: server-server/content_repository.yaml — our media, for peers (Matrix v1.11).

Answers are multipart/mixed (RFC 2046): a JSON part (`{}`, the metadata) and the bytes with
their Content-Type and Content-Disposition. Only local media is served: a peer asks the origin for
remote media itself. The bytes are streamed from the file, never read whole.
"""

import asyncio
import secrets

from aiohttp import web

from homeserver.api.http import FEDERATION_V1, Auth, int_param, route, services_of
from homeserver.api.media_responses import bool_param, content_headers, thumbnail_headers, timeout_ms_param
from homeserver.services.media.repository import ServedContent

_CHUNK_BYTES = 256 * 1024
_CRLF = b"\r\n"


@route("GET", "/media/download/{mediaId}", auth=Auth.SERVER, prefixes=FEDERATION_V1)
async def get_content(request: web.Request) -> web.StreamResponse:
    """GET /_matrix/federation/v1/media/download/{mediaId}"""
    services = services_of(request)
    content = await services.media.get_content(
        services.config.server_name, request.match_info["mediaId"], timeout_ms=timeout_ms_param(request),
        legacy=False)
    return await _multipart_response(request, content, content_headers(content))


@route("GET", "/media/thumbnail/{mediaId}", auth=Auth.SERVER, prefixes=FEDERATION_V1)
async def get_content_thumbnail(request: web.Request) -> web.StreamResponse:
    """GET /_matrix/federation/v1/media/thumbnail/{mediaId}"""
    services = services_of(request)
    thumbnail = await services.thumbnails.thumbnail(
        services.config.server_name, request.match_info["mediaId"], width=int_param(request, "width"),
        height=int_param(request, "height"), method=request.query.get("method", "scale"),
        animated=bool_param(request, "animated"), timeout_ms=timeout_ms_param(request), legacy=False,
    )
    return await _multipart_response(request, thumbnail, thumbnail_headers(thumbnail))


async def _multipart_response(request: web.Request, content: ServedContent,
                              headers: dict[str, str]) -> web.StreamResponse:
    # RFC 2046: a random boundary, which the content is all but certain not to contain.
    boundary = secrets.token_hex(16).encode("ascii")
    head = (_part_head(boundary, {"Content-Type": "application/json"}, first=True) + b"{}"
            + _part_head(boundary, headers))
    tail = _CRLF + b"--" + boundary + b"--" + _CRLF
    response = web.StreamResponse(headers={"Content-Type": f"multipart/mixed; boundary={boundary.decode()}"})
    response.content_length = len(head) + content.length + len(tail)
    await response.prepare(request)
    await response.write(head)
    with await asyncio.to_thread(content.path.open, "rb") as file:
        while chunk := await asyncio.to_thread(file.read, _CHUNK_BYTES):
            await response.write(chunk)
    await response.write(tail)
    await response.write_eof()
    return response


def _part_head(boundary: bytes, headers: dict[str, str], *, first: bool = False) -> bytes:
    """The delimiter and header lines that open a part (RFC 2046, section 5.1.1)."""
    lines = [b"--" + boundary, *(f"{name}: {value}".encode("utf-8") for name, value in headers.items())]
    return (b"" if first else _CRLF) + _CRLF.join(lines) + _CRLF + _CRLF
