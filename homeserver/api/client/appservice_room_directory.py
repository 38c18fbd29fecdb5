"""Spec file: client-server/appservice_room_directory.yaml."""

from aiohttp import web

from homeserver.api.http import json_response, read_json_object, requester_of, route, services_of


@route("PUT", "/directory/list/appservice/{networkId}/{roomId}")
async def update_appservice_room_directory_visibility(request: web.Request) -> web.Response:
    """PUT /_matrix/client/v3/directory/list/appservice/{networkId}/{roomId}"""
    body = await read_json_object(request)
    await services_of(request).directory.set_network_visibility(
        requester_of(request), request.match_info["networkId"], request.match_info["roomId"], body.get("visibility"))
    return json_response({})
