"""Spec file: client-server/room_upgrades.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, json_response, read_json_object, requester_of, route, services_of


@route("POST", "/rooms/{roomId}/upgrade", auth=Auth.USER, rate_limited=True)
async def upgrade_room(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/rooms/{roomId}/upgrade"""
    body = await read_json_object(request)
    new_room_id = await services_of(request).upgrades.upgrade(
        requester_of(request), request.match_info["roomId"], body.get("new_version")
    )
    return json_response({"replacement_room": new_room_id})
