"""Spec file: client-server/kicking.yaml."""

from aiohttp import web

from homeserver.api.client.membership_common import reason_of, target_of
from homeserver.api.http import Auth, json_response, read_json_object, requester_of, route, services_of


@route("POST", "/rooms/{roomId}/kick", auth=Auth.USER, rate_limited=True)
async def kick(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/rooms/{roomId}/kick"""
    body = await read_json_object(request)
    await services_of(request).membership.kick(
        requester_of(request).user_id, request.match_info["roomId"], target_of(body), reason_of(body)
    )
    return json_response({})
