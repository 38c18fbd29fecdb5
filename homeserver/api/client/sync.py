"""Spec file: client-server/sync.yaml."""

import orjson
from aiohttp import web

from homeserver.api.http import Auth, json_response, requester_of, route, services_of
from homeserver.errors import Codes, MatrixError
from homeserver.services.sync import DEFAULT_TIMELINE_LIMIT


@route("GET", "/sync", auth=Auth.USER, guest=True)
async def sync(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/sync"""
    q = request.query
    try:
        timeout = int(q.get("timeout", "0"))
    except ValueError:
        raise MatrixError(400, Codes.INVALID_PARAM, "'timeout' must be an integer") from None
    full_state = q.get("full_state", "false")
    if full_state not in ("true", "false"):
        raise MatrixError(400, Codes.INVALID_PARAM, "'full_state' must be true or false")
    limit = DEFAULT_TIMELINE_LIMIT
    if "filter" in q and q["filter"].startswith("{"):
        try:
            sync_filter = orjson.loads(q["filter"])
        except orjson.JSONDecodeError:
            raise MatrixError(400, Codes.NOT_JSON, "'filter' is not JSON") from None
        room_filter = sync_filter.get("room") if isinstance(sync_filter, dict) else None
        timeline = room_filter.get("timeline") if isinstance(room_filter, dict) else None
        if isinstance(timeline, dict) and "limit" in timeline:
            if isinstance(timeline["limit"], bool) or not isinstance(timeline["limit"], int) or timeline["limit"] < 0:
                raise MatrixError(400, Codes.BAD_JSON, "'room.timeline.limit' must be a non-negative integer")
            limit = min(timeline["limit"], 1000)
    body = await services_of(request).sync.sync(
        requester_of(request), since=q.get("since"), timeout_ms=timeout, full_state=full_state == "true",
        timeline_limit=limit,
    )
    return json_response(body)
