"""Spec file: client-server/message_pagination.yaml."""

from typing import Any

import orjson
from aiohttp import web

from homeserver.api.http import Auth, int_param, json_response, requester_of, route, services_of
from homeserver.errors import Codes, MatrixError
from homeserver.services.rooms.timeline import Page


@route("GET", "/rooms/{roomId}/messages", auth=Auth.USER, guest=True)
async def get_room_events(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/rooms/{roomId}/messages"""
    q = request.query
    page = await services_of(request).timeline.messages(
        requester_of(request), request.match_info["roomId"], from_token=q.get("from"), to_token=q.get("to"),
        direction=q.get("dir", "b"), limit=int_param(request, "limit", 10, minimum=0),
        event_filter=room_event_filter(request),
    )
    return json_response(page_body(page))


def room_event_filter(request: web.Request) -> dict[str, Any] | None:
    """The `filter` query parameter of /messages (a RoomEventFilter as JSON), checked."""
    if "filter" not in request.query:
        return None
    try:
        event_filter = orjson.loads(request.query["filter"])
    except orjson.JSONDecodeError:
        raise MatrixError(400, Codes.NOT_JSON, "'filter' is not JSON") from None
    if not isinstance(event_filter, dict):
        raise MatrixError(400, Codes.BAD_JSON, "'filter' must be an object")
    for key in ("types", "not_types", "senders", "not_senders"):
        value = event_filter.get(key)
        if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
            raise MatrixError(400, Codes.BAD_JSON, f"'filter.{key}' must be a list of strings")
    return event_filter


def page_body(page: Page) -> dict[str, Any]:
    body: dict[str, Any] = {"chunk": page.chunk, "start": page.start}
    if page.end is not None:
        body["end"] = page.end
    if page.state:
        body["state"] = page.state
    return body
