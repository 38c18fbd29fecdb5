"""Spec file: client-server/list_joined_rooms.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, json_response, requester_of, route, services_of


@route("GET", "/joined_rooms", auth=Auth.USER)
async def get_joined_rooms(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/joined_rooms"""
    rooms = await services_of(request).messaging.joined_rooms(requester_of(request).user_id)
    return json_response({"joined_rooms": rooms})
