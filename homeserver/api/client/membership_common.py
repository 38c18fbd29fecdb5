"""Shared parsing for the membership endpoints (joining, leaving, inviting, kicking, banning)."""

from typing import Any

from aiohttp import web

from homeserver.errors import Codes, MatrixError


def reason_of(body: dict[str, Any]) -> str | None:
    reason = body.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise MatrixError(400, Codes.BAD_JSON, "'reason' must be a string")
    return reason


def target_of(body: dict[str, Any]) -> str:
    user_id = body.get("user_id")
    if not isinstance(user_id, str):
        raise MatrixError(400, Codes.MISSING_PARAM, "'user_id' must be a string")
    return user_id


def via_servers(request: web.Request) -> list[str]:
    """The servers a client names to reach a room: `via`, and the older `server_name`."""
    return list(dict.fromkeys([*request.query.getall("via", []), *request.query.getall("server_name", [])]))
