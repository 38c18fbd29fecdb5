"""Joining a local user to a room, as Synapse's admin API serves it (docs/admin_api/room_membership.md)."""

from aiohttp import web

from homeserver.api.http import SYNAPSE_ADMIN_V1, Auth, json_response, read_json_object, requester_of, route, services_of


@route("POST", "/join/{roomIdOrAlias}", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def join_user_to_room(request: web.Request) -> web.Response:
    """POST /_synapse/admin/v1/join/{roomIdOrAlias}"""
    room_id = await services_of(request).admin_rooms.join_user(
        requester_of(request).user_id, request.match_info["roomIdOrAlias"], await read_json_object(request),
        servers=request.query.getall("server_name", []))
    return json_response({"room_id": room_id})
