"""Spec file: client-server/joining.yaml."""

from aiohttp import web

from homeserver.api.client.membership_common import reason_of, via_servers
from homeserver.api.http import Auth, json_response, read_json_object, requester_of, route, services_of


@route("POST", "/rooms/{roomId}/join", auth=Auth.USER, guest=True, rate_limited=True)
async def join_room_by_id(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/rooms/{roomId}/join"""
    body = await read_json_object(request, allow_empty=True)
    room_id = request.match_info["roomId"]
    requester = requester_of(request)
    await services_of(request).membership.join(requester.user_id, room_id, reason_of(body), is_guest=requester.is_guest)
    return json_response({"room_id": room_id})


@route("POST", "/join/{roomIdOrAlias}", auth=Auth.USER, guest=True, rate_limited=True)
async def join_room(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/join/{roomIdOrAlias}

    The body's other keys go into the member event's content, as Synapse does.
    """
    body = await read_json_object(request, allow_empty=True)
    services = services_of(request)
    room_id, servers = await services.directory.room_and_servers(request.match_info["roomIdOrAlias"])
    requester = requester_of(request)
    await services.membership.join(requester.user_id, room_id, reason_of(body), is_guest=requester.is_guest,
                                   servers=via_servers(request) + servers, extra_content=body)
    return json_response({"room_id": room_id})
