"""Spec file: client-server/typing.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, json_response, read_json_object, requester_of, route, services_of


@route("PUT", "/rooms/{roomId}/typing/{userId}", auth=Auth.USER)
async def set_typing(request: web.Request) -> web.Response:
    """PUT /_matrix/client/v3/rooms/{roomId}/typing/{userId}"""
    m = request.match_info
    body = await read_json_object(request)
    await services_of(request).typing.set_typing(requester_of(request), m["roomId"], m["userId"], body)
    return json_response({})
