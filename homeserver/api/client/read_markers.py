"""Spec file: client-server/read_markers.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, json_response, read_json_object, requester_of, route, services_of


@route("POST", "/rooms/{roomId}/read_markers", auth=Auth.USER)
async def set_read_marker(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/rooms/{roomId}/read_markers"""
    body = await read_json_object(request)
    await services_of(request).receipts.set_read_markers(requester_of(request), request.match_info["roomId"], body)
    return json_response({})
