"""Spec file: client-server/directory.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, json_response, read_json_object, requester_of, route, services_of


@route("PUT", "/directory/room/{roomAlias}", auth=Auth.USER, rate_limited=True)
async def set_room_alias(request: web.Request) -> web.Response:
    """PUT /_matrix/client/v3/directory/room/{roomAlias}"""
    body = await read_json_object(request)
    requester = requester_of(request)
    await services_of(request).directory.create_alias(
        requester.user_id, request.match_info["roomAlias"], body.get("room_id"), app_service_id=requester.app_service_id
    )
    return json_response({})


@route("GET", "/directory/room/{roomAlias}", auth=Auth.OPTIONAL)
async def get_room_id_by_alias(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/directory/room/{roomAlias}"""
    return json_response(await services_of(request).directory.resolve_alias(request.match_info["roomAlias"]))


@route("DELETE", "/directory/room/{roomAlias}", auth=Auth.USER)
async def delete_room_alias(request: web.Request) -> web.Response:
    """DELETE /_matrix/client/v3/directory/room/{roomAlias}"""
    await services_of(request).directory.delete_alias(requester_of(request), request.match_info["roomAlias"])
    return json_response({})


@route("GET", "/rooms/{roomId}/aliases", auth=Auth.USER)
async def get_local_aliases(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/rooms/{roomId}/aliases"""
    aliases = await services_of(request).directory.local_aliases(requester_of(request), request.match_info["roomId"])
    return json_response({"aliases": aliases})
