"""Spec file: server-server/public_rooms.yaml."""

from aiohttp import web

from homeserver.api.http import FEDERATION_V1, Auth, bool_param, int_param, json_response, origin_of, read_json_object, route, services_of
from homeserver.errors import Codes, MatrixError


@route("GET", "/publicRooms", auth=Auth.SERVER, prefixes=FEDERATION_V1)
async def get_public_rooms(request: web.Request) -> web.Response:
    """GET /_matrix/federation/v1/publicRooms"""
    q = request.query
    return json_response(await services_of(request).directory.public_rooms_for_server(
        origin_of(request),
        limit=int_param(request, "limit", minimum=0) if "limit" in q else None, since=q.get("since"),
        include_all_networks=bool_param(request, "include_all_networks"),
        third_party_instance_id=q.get("third_party_instance_id"),
    ))


@route("POST", "/publicRooms", auth=Auth.SERVER, prefixes=FEDERATION_V1)
async def query_public_rooms(request: web.Request) -> web.Response:
    """POST /_matrix/federation/v1/publicRooms"""
    body = await read_json_object(request, allow_empty=True)
    search_filter = body.get("filter") or {}
    if not isinstance(search_filter, dict):
        raise MatrixError(400, Codes.BAD_JSON, "'filter' must be an object")
    return json_response(await services_of(request).directory.public_rooms_for_server(
        origin_of(request),
        limit=body.get("limit"), since=body.get("since"),
        search=search_filter.get("generic_search_term"), room_types=search_filter.get("room_types"),
        include_all_networks=body.get("include_all_networks", False),
        third_party_instance_id=body.get("third_party_instance_id"),
    ))
