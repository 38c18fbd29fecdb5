"""Spec file: client-server/create_room.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, json_response, read_json_object, requester_of, route, services_of


@route("POST", "/createRoom", auth=Auth.USER, rate_limited=True)
async def create_room(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/createRoom"""
    body = await read_json_object(request, allow_empty=True)
    if body.get("invite_3pid"):  # invites through identity servers
        room_id = await services_of(request).third_party_invites.create_room(requester_of(request), body)
    else:
        requester = requester_of(request)
        room_id = await services_of(request).rooms.create_room(requester.user_id, body,
                                                               app_service_id=requester.app_service_id)
    return json_response({"room_id": room_id})
