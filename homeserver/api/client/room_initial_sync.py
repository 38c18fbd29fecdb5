"""Spec file: client-server/room_initial_sync.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, int_param, json_response, requester_of, route, services_of


@route("GET", "/rooms/{roomId}/initialSync", auth=Auth.USER, guest=True)
async def room_initial_sync(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/rooms/{roomId}/initialSync"""
    body = await services_of(request).initial_sync.room_initial_sync(
        requester_of(request), request.match_info["roomId"], limit=int_param(request, "limit", 10, minimum=0),
    )
    return json_response(body)
