"""Spec file: client-server/presence.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, json_response, read_json_object, requester_of, route, services_of


@route("PUT", "/presence/{userId}/status", auth=Auth.USER)
async def set_presence(request: web.Request) -> web.Response:
    """PUT /_matrix/client/v3/presence/{userId}/status"""
    body = await read_json_object(request)
    await services_of(request).presence.set_status(requester_of(request), request.match_info["userId"], body)
    return json_response({})


@route("GET", "/presence/{userId}/status", auth=Auth.USER)
async def get_presence(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/presence/{userId}/status"""
    return json_response(
        await services_of(request).presence.get_status(requester_of(request), request.match_info["userId"])
    )
