"""Spec file: client-server/room_event_by_timestamp.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, int_param, json_response, requester_of, route, services_of


@route("GET", "/rooms/{roomId}/timestamp_to_event", auth=Auth.USER, prefixes=("/_matrix/client/v1",))
async def get_event_by_timestamp(request: web.Request) -> web.Response:
    """GET /_matrix/client/v1/rooms/{roomId}/timestamp_to_event"""
    q = request.query
    ts = int_param(request, "ts")
    body = await services_of(request).timeline.event_at_timestamp(
        requester_of(request), request.match_info["roomId"], ts, q.get("dir", "f")
    )
    return json_response(body)
