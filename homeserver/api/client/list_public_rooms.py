"""Spec file: client-server/list_public_rooms.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, int_param, json_response, optional_requester_of, read_json_object, requester_of, \
    route, services_of
from homeserver.core.ids import is_valid_server_name
from homeserver.errors import Codes, MatrixError


@route("GET", "/directory/list/room/{roomId}", auth=Auth.NONE)
async def get_room_visibility_on_directory(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/directory/list/room/{roomId}"""
    visibility = await services_of(request).directory.visibility(request.match_info["roomId"])
    return json_response({"visibility": visibility})


@route("PUT", "/directory/list/room/{roomId}", auth=Auth.USER)
async def set_room_visibility_on_directory(request: web.Request) -> web.Response:
    """PUT /_matrix/client/v3/directory/list/room/{roomId}"""
    body = await read_json_object(request)
    await services_of(request).directory.set_visibility(
        requester_of(request), request.match_info["roomId"], body.get("visibility", "public")
    )
    return json_response({})


@route("GET", "/publicRooms", auth=Auth.OPTIONAL)
async def get_public_rooms(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/publicRooms"""
    q = request.query
    limit = int_param(request, "limit", 100, minimum=0) if "limit" in q else None
    directory = services_of(request).directory
    server = _remote_server(request, q.get("server"))
    if server is not None:
        # Anyone may read our own list, but asking another server on someone's behalf takes
        # a token (as Synapse): no anonymous requests relayed through us.
        if optional_requester_of(request) is None:
            raise MatrixError(401, Codes.MISSING_TOKEN, "Another server's directory needs an access token")
        return json_response(await directory.remote_public_rooms(server, limit=limit, since=q.get("since")))
    return json_response(await directory.public_rooms(limit=limit, since=q.get("since")))


@route("POST", "/publicRooms", auth=Auth.USER)
async def query_public_rooms(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/publicRooms"""
    body = await read_json_object(request, allow_empty=True)
    server = _remote_server(request, request.query.get("server"))
    search_filter = body.get("filter") or {}
    if not isinstance(search_filter, dict):
        raise MatrixError(400, Codes.BAD_JSON, "'filter' must be an object")
    directory = services_of(request).directory
    limit, since = body.get("limit"), body.get("since")
    include_all, instance = body.get("include_all_networks", False), body.get("third_party_instance_id")
    if server is not None:
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise MatrixError(400, Codes.INVALID_PARAM, "'limit' must be a non-negative integer")
        if since is not None and not isinstance(since, str):
            raise MatrixError(400, Codes.INVALID_PARAM, "'since' must be a string")
        if not isinstance(include_all, bool) or (instance is not None and not isinstance(instance, str)):
            raise MatrixError(400, Codes.BAD_JSON, "'include_all_networks' or 'third_party_instance_id' is invalid")
        return json_response(await directory.remote_public_rooms(
            server, limit=limit, since=since, search_filter=search_filter, include_all_networks=include_all,
            third_party_instance_id=instance))
    return json_response(await directory.public_rooms(
        limit=limit, since=since, search=search_filter.get("generic_search_term"),
        room_types=search_filter.get("room_types"), include_all_networks=include_all,
        third_party_instance_id=instance,
    ))


def _remote_server(request: web.Request, server: str | None) -> str | None:
    """The server whose directory is asked for, when it is not this one."""
    if server is None or server == services_of(request).config.server_name:
        return None
    if not is_valid_server_name(server):
        raise MatrixError(400, Codes.INVALID_PARAM, "'server' is not a server name")
    return server
