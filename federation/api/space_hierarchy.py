"""Spec file: server-server/space_hierarchy.yaml."""

from aiohttp import web

from homeserver.api.http import FEDERATION_V1, Auth, bool_param, json_response, origin_of, route, services_of


@route("GET", "/hierarchy/{roomId}", auth=Auth.SERVER, prefixes=FEDERATION_V1)
async def get_space_hierarchy(request: web.Request) -> web.Response:
    """GET /_matrix/federation/v1/hierarchy/{roomId}"""
    room_id, origin = request.match_info["roomId"], origin_of(request)
    services = services_of(request)
    await services.federation_reads.check_acl(room_id, origin)
    return json_response(await services.hierarchy.federation_hierarchy(
        origin, room_id, bool_param(request, "suggested_only")))
