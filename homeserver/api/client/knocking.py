"""Spec file: client-server/knocking.yaml."""

from aiohttp import web

from homeserver.api.client.membership_common import reason_of
from homeserver.api.http import Auth, json_response, read_json_object, requester_of, route, services_of


@route("POST", "/knock/{roomIdOrAlias}", auth=Auth.USER, rate_limited=True)
async def knock_room(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/knock/{roomIdOrAlias}"""
    body = await read_json_object(request, allow_empty=True)
    services = services_of(request)
    room_id = await services.directory.room_id_for(request.match_info["roomIdOrAlias"])
    await services.membership.knock(requester_of(request).user_id, room_id, reason_of(body))
    return json_response({"room_id": room_id})
