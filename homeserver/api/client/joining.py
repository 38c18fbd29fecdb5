"""Spec file: client-server/joining.yaml."""

from aiohttp import web

from homeserver.api.client.membership_common import reason_of
from homeserver.api.http import Auth, json_response, read_json_object, requester_of, route, services_of


@route("POST", "/rooms/{roomId}/join", auth=Auth.USER, rate_limited=True)
async def join_room_by_id(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/rooms/{roomId}/join"""
    body = await read_json_object(request, allow_empty=True)
    room_id = request.match_info["roomId"]
    await services_of(request).membership.join(requester_of(request).user_id, room_id, reason_of(body))
    return json_response({"room_id": room_id})


@route("POST", "/join/{roomIdOrAlias}", auth=Auth.USER, rate_limited=True)
async def join_room(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/join/{roomIdOrAlias}"""
    body = await read_json_object(request, allow_empty=True)
    services = services_of(request)
    room_id = await services.directory.room_id_for(request.match_info["roomIdOrAlias"])
    await services.membership.join(requester_of(request).user_id, room_id, reason_of(body))
    return json_response({"room_id": room_id})
