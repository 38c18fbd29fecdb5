"""Spec file: client-server/leaving.yaml."""

from aiohttp import web

from homeserver.api.client.membership_common import reason_of
from homeserver.api.http import Auth, json_response, read_json_object, requester_of, route, services_of


@route("POST", "/rooms/{roomId}/leave", auth=Auth.USER, guest=True, rate_limited=True)
async def leave_room(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/rooms/{roomId}/leave"""
    body = await read_json_object(request, allow_empty=True)
    await services_of(request).membership.leave(requester_of(request).user_id, request.match_info["roomId"], reason_of(body))
    return json_response({})


@route("POST", "/rooms/{roomId}/forget", auth=Auth.USER, rate_limited=True)
async def forget_room(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/rooms/{roomId}/forget"""
    await services_of(request).membership.forget(requester_of(request).user_id, request.match_info["roomId"])
    return json_response({})
