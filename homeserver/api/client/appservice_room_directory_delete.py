"""Unpublishing a room from an appservice's network directory with DELETE: no spec file defines
it (the spec has PUT with `"visibility": "private"`); Synapse serves it and sytest uses it."""

from aiohttp import web

from homeserver.api.http import json_response, requester_of, route, services_of


@route("DELETE", "/directory/list/appservice/{networkId}/{roomId}")
async def delete_appservice_room_directory_entry(request: web.Request) -> web.Response:
    """DELETE /_matrix/client/v3/directory/list/appservice/{networkId}/{roomId}"""
    await services_of(request).directory.set_network_visibility(
        requester_of(request), request.match_info["networkId"], request.match_info["roomId"], "private")
    return json_response({})
