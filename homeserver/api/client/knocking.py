"""Spec file: client-server/knocking.yaml."""

from aiohttp import web

from homeserver.api.client.membership_common import reason_of, via_servers
from homeserver.api.http import Auth, json_response, read_json_object, requester_of, route, services_of


@route("POST", "/knock/{roomIdOrAlias}", auth=Auth.USER, rate_limited=True)
async def knock_room(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/knock/{roomIdOrAlias}"""
    body = await read_json_object(request, allow_empty=True)
    services = services_of(request)
    room_id, servers = await services.directory.room_and_servers(request.match_info["roomIdOrAlias"])
    await services.membership.knock(requester_of(request).user_id, room_id, reason_of(body),
                                    servers=via_servers(request) + servers)
    return json_response({"room_id": room_id})
