"""Spec file: client-server/event_context.yaml."""

import orjson
from aiohttp import web

from homeserver.api.http import Auth, int_param, json_response, requester_of, route, services_of
from homeserver.errors import Codes, MatrixError


@route("GET", "/rooms/{roomId}/context/{eventId}", auth=Auth.USER, guest=True)
async def get_event_context(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/rooms/{roomId}/context/{eventId}"""
    q = request.query
    limit = int_param(request, "limit", 10)
    lazy = False
    if "filter" in q:
        try:
            event_filter = orjson.loads(q["filter"])
        except orjson.JSONDecodeError:
            raise MatrixError(400, Codes.NOT_JSON, "'filter' is not JSON") from None
        if not isinstance(event_filter, dict):
            raise MatrixError(400, Codes.BAD_JSON, "'filter' must be an object")
        lazy = event_filter.get("lazy_load_members") is True
    body = await services_of(request).timeline.context(
        requester_of(request), request.match_info["roomId"], request.match_info["eventId"], limit, lazy
    )
    return json_response(body)
