"""Query parameters as Synapse's admin API reads them (no routes here).

Offset paging (`from`, `limit`), a direction (`dir`: `f` or `b`), booleans (`true`/`false`)
and one-of-a-list strings; anything else is 400 M_INVALID_PARAM, as Synapse answers.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from homeserver.api.http import int_param
from homeserver.errors import Codes, MatrixError


def offset_paging(request: web.Request, default_limit: int = 100) -> tuple[int, int]:
    """`from` (an offset, default 0) and `limit` (default 100), both non-negative."""
    start = int_param(request, "from", 0)
    limit = int_param(request, "limit", default_limit)
    if start < 0:
        raise MatrixError(400, Codes.INVALID_PARAM, "The start parameter must be a positive integer.")
    if limit < 0:
        raise MatrixError(400, Codes.INVALID_PARAM, "The limit parameter must be a positive integer.")
    return start, limit


def direction(request: web.Request, default: str = "f") -> str:
    """`dir`: `f` (forwards) or `b` (backwards)."""
    value = request.query.get("dir", default)
    if value not in ("f", "b"):
        raise MatrixError(400, Codes.INVALID_PARAM, "'dir' must be 'f' or 'b'")
    return value


def bool_param(request: web.Request, name: str, default: bool | None = None) -> bool | None:
    value = request.query.get(name)
    if value is None:
        return default
    if value not in ("true", "false"):
        raise MatrixError(400, Codes.INVALID_PARAM, f"'{name}' must be 'true' or 'false'")
    return value == "true"


def choice_param(request: web.Request, name: str, allowed: Iterable[str], default: str) -> str:
    value = request.query.get(name, default)
    allowed = tuple(allowed)
    if value not in allowed:
        raise MatrixError(400, Codes.INVALID_PARAM, f"'{name}' must be one of {', '.join(allowed)}")
    return value


def next_token(start: int, limit: int, returned: int, total: int) -> int | None:
    """Synapse's `next_token`: the offset of the next page while more rows remain."""
    return start + returned if start + limit < total else None
