"""Spec file: server-server/leaving-v1.yaml."""

from aiohttp import web

from homeserver.api.http import FEDERATION_V1, Auth, json_response, origin_of, route, services_of


@route("GET", "/make_leave/{roomId}/{userId}", auth=Auth.SERVER, prefixes=FEDERATION_V1)
async def make_leave(request: web.Request) -> web.Response:
    """GET /_matrix/federation/v1/make_leave/{roomId}/{userId}"""
    # Spec (Server ACLs): this endpoint MUST be protected.
    await services_of(request).federation_reads.check_acl(request.match_info["roomId"], origin_of(request))
    return json_response(await services_of(request).federation_membership.make_membership(
        origin_of(request), request.match_info["roomId"], request.match_info["userId"], "leave", None))
