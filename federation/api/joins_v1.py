"""Spec file: server-server/joins-v1.yaml."""

from aiohttp import web

from homeserver.api.http import FEDERATION_V1, Auth, json_response, origin_of, route, services_of


@route("GET", "/make_join/{roomId}/{userId}", auth=Auth.SERVER, prefixes=FEDERATION_V1)
async def make_join(request: web.Request) -> web.Response:
    """GET /_matrix/federation/v1/make_join/{roomId}/{userId}"""
    # Spec (Server ACLs): this endpoint MUST be protected.
    await services_of(request).federation_reads.check_acl(request.match_info["roomId"], origin_of(request))
    # Servers that send no `ver` support only room version 1 (spec).
    versions = request.query.getall("ver", ["1"])
    return json_response(await services_of(request).federation_membership.make_membership(
        origin_of(request), request.match_info["roomId"], request.match_info["userId"], "join", versions))
