"""Query parameters as Synapse's admin API reads them (no routes here).

Offset paging (`from`, `limit`), a direction (`dir`: `f` or `b`), booleans (`true`/`false`)
and one-of-a-list strings; anything else is 400 M_INVALID_PARAM, as Synapse answers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiohttp import web

from homeserver.api.http import int_param
from homeserver.errors import Codes, MatrixError

_MAX_INT = 2**31 - 1


def offset_paging(request: web.Request, default_limit: int = 100) -> tuple[int, int]:
    """`from` (an offset, default 0) and `limit` (default 100), both non-negative (and below
    2^31: the database takes no more)."""
    start = int_param(request, "from", 0)
    limit = int_param(request, "limit", default_limit)
    if not 0 <= start <= _MAX_INT:
        raise MatrixError(400, Codes.INVALID_PARAM, "The start parameter must be a positive integer.")
    if not 0 <= limit <= _MAX_INT:
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


def page_body(key: str, items: list[Any], start: int, limit: int, total: int, *,
              token_as_string: bool = False) -> dict[str, Any]:
    """One page as Synapse answers it: the items under `key`, `total`, and while more remain a
    `next_token` (the offset of the next page; a string in some of Synapse's APIs)."""
    body: dict[str, Any] = {key: items, "total": total}
    if start + limit < total:
        token = start + len(items)
        body["next_token"] = str(token) if token_as_string else token
    return body
