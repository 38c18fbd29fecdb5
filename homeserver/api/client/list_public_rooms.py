"""Spec file: client-server/list_public_rooms.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, int_param, json_response, read_json_object, requester_of, route, services_of
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
    _check_server(request, q.get("server"))
    return json_response(await services_of(request).directory.public_rooms(limit=limit, since=q.get("since")))


@route("POST", "/publicRooms", auth=Auth.USER)
async def query_public_rooms(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/publicRooms"""
    body = await read_json_object(request, allow_empty=True)
    _check_server(request, request.query.get("server"))
    search_filter = body.get("filter") or {}
    if not isinstance(search_filter, dict):
        raise MatrixError(400, Codes.BAD_JSON, "'filter' must be an object")
    return json_response(await services_of(request).directory.public_rooms(
        limit=body.get("limit"), since=body.get("since"),
        search=search_filter.get("generic_search_term"), room_types=search_filter.get("room_types"),
    ))


def _check_server(request: web.Request, server: str | None) -> None:
    if server is not None and server != services_of(request).config.server_name:
        # Other servers' directories are fetched over federation.
        raise MatrixError(404, Codes.NOT_FOUND, "Remote room directories need federation")
