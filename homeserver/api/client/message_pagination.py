"""Spec file: client-server/message_pagination.yaml."""

import orjson
from aiohttp import web

from homeserver.api.http import Auth, int_param, json_response, requester_of, route, services_of
from homeserver.errors import Codes, MatrixError


@route("GET", "/rooms/{roomId}/messages", auth=Auth.USER, guest=True)
async def get_room_events(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/rooms/{roomId}/messages"""
    q = request.query
    limit = int_param(request, "limit", 10, minimum=0)
    event_filter = None
    if "filter" in q:
        try:
            event_filter = orjson.loads(q["filter"])
        except orjson.JSONDecodeError:
            raise MatrixError(400, Codes.NOT_JSON, "'filter' is not JSON") from None
        if not isinstance(event_filter, dict):
            raise MatrixError(400, Codes.BAD_JSON, "'filter' must be an object")
        for key in ("types", "not_types", "senders", "not_senders"):
            value = event_filter.get(key)
            if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
                raise MatrixError(400, Codes.BAD_JSON, f"'filter.{key}' must be a list of strings")
    page = await services_of(request).timeline.messages(
        requester_of(request), request.match_info["roomId"], from_token=q.get("from"), to_token=q.get("to"),
        direction=q.get("dir", "b"), limit=limit, event_filter=event_filter,
    )
    body = {"chunk": page.chunk, "start": page.start}
    if page.end is not None:
        body["end"] = page.end
    if page.state:
        body["state"] = page.state
    return json_response(body)
