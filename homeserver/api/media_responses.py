"""HTTP shapes shared by the two media handler modules (content_repo, authed_content_repo):
the request parameters they both read and the headers content is served with.

Served content gets the spec's Content-Security-Policy and Cross-Origin-Resource-Policy,
`nosniff`, and a `Content-Disposition` that is `inline` only for the types the spec deems
safe to render ("Serving inline content") and `attachment` for the rest.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator

from aiohttp import web

from homeserver.api.http import int_param
from homeserver.errors import Codes, MatrixError, missing_param
from homeserver.services.media.repository import ServedContent

UPLOAD_CHUNK_BYTES = 1024 * 1024
DEFAULT_TIMEOUT_MS = 20_000

# Spec, "Serving inline content": the types a browser may render in place. SVG is not one.
INLINE_TYPES = frozenset({
    "text/css", "text/plain", "text/csv", "application/json", "application/ld+json",
    "image/jpeg", "image/gif", "image/png", "image/apng", "image/webp", "image/avif",
    "video/mp4", "video/webm", "video/ogg", "video/quicktime",
    "audio/mp4", "audio/webm", "audio/aac", "audio/mpeg", "audio/ogg", "audio/wave", "audio/wav",
    "audio/x-wav", "audio/x-pn-wav", "audio/flac", "audio/x-flac",
})
# Text types served with a UTF-8 charset when the uploader named none (as Synapse).
_TEXT_TYPES = frozenset({
    "text/css", "text/csv", "text/html", "text/calendar", "text/plain", "text/javascript",
    "application/json", "application/ld+json", "application/rtf", "image/svg+xml", "text/xml",
})
_CONTENT_SECURITY_POLICY = (
    "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; "
    "style-src 'unsafe-inline'; media-src 'self'; object-src 'self';"
)
# RFC 2616 separators: a file name with none of these (nor controls, spaces, non-ASCII) can be
# sent as a bare token; any other goes as RFC 5987 filename*=utf-8''...
_SEPARATORS = frozenset('()<>@,;:\\"/[]?={}')


# --- requests -------------------------------------------------------------------------------

def upload_body(request: web.Request) -> AsyncIterator[bytes]:
    """The request body, streamed: uploads are never read whole into memory."""
    return request.content.iter_chunked(UPLOAD_CHUNK_BYTES)


def timeout_ms_param(request: web.Request) -> int:
    return int_param(request, "timeout_ms", DEFAULT_TIMEOUT_MS, minimum=0)


def bool_param(request: web.Request, name: str, default: bool = False) -> bool:
    value = request.query.get(name, "true" if default else "false")
    if value not in ("true", "false"):
        raise MatrixError(400, Codes.INVALID_PARAM, f"'{name}' must be 'true' or 'false'")
    return value == "true"


def optional_int_param(request: web.Request, name: str) -> int | None:
    return int_param(request, name) if name in request.query else None


def str_param(request: web.Request, name: str) -> str:
    value = request.query.get(name)
    if value is None:
        raise missing_param(f"'{name}' is required")
    return value


# --- responses ------------------------------------------------------------------------------

def content_headers(content: ServedContent, file_name: str | None = None) -> dict[str, str]:
    """Content-Type and Content-Disposition of a download (also a part of a federation answer)."""
    essence = content.media_type.split(";", 1)[0].strip().lower()
    content_type = content.media_type
    if essence in _TEXT_TYPES and "charset" not in content_type.lower():
        content_type += "; charset=UTF-8"
    disposition = "inline" if essence in INLINE_TYPES else "attachment"
    return {"Content-Type": content_type,
            "Content-Disposition": _disposition(disposition, file_name or content.upload_name)}


def thumbnail_headers(content: ServedContent) -> dict[str, str]:
    extension = content.media_type.rsplit("/", 1)[-1]
    return {"Content-Type": content.media_type, "Content-Disposition": f"inline; filename=thumbnail.{extension}"}


def content_response(content: ServedContent, *, file_name: str | None = None, authenticated: bool) -> web.FileResponse:
    """A download: the file with its type, a disposition naming it, and the safety headers."""
    headers = content_headers(content, file_name)
    return _file_response(content, headers["Content-Type"], headers["Content-Disposition"], authenticated)


def thumbnail_response(content: ServedContent, *, authenticated: bool) -> web.FileResponse:
    headers = thumbnail_headers(content)
    return _file_response(content, headers["Content-Type"], headers["Content-Disposition"], authenticated)


def _file_response(content: ServedContent, content_type: str, disposition: str,
                   authenticated: bool) -> web.FileResponse:
    return web.FileResponse(content.path, headers={
        "Content-Type": content_type,
        "Content-Disposition": disposition,
        "Content-Security-Policy": _CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Cross-Origin-Resource-Policy": "cross-origin",
        "Referrer-Policy": "no-referrer",
        "X-Robots-Tag": "noindex, nofollow, noarchive, noimageindex",
        # Content never changes under its URI. Authenticated responses stay out of shared caches.
        "Cache-Control": f"{'private' if authenticated else 'public'}, max-age=31536000, immutable",
    })


def _disposition(kind: str, name: str | None) -> str:
    if not name:
        return kind
    if all(0x20 < ord(c) < 0x7F and c not in _SEPARATORS for c in name):
        return f"{kind}; filename={name}"
    return f"{kind}; filename*=utf-8''{urllib.parse.quote(name, safe='')}"
