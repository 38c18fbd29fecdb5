"""Spec file: server-server/invites-v1.yaml."""

from aiohttp import web

from homeserver.api.http import FEDERATION_V1, Auth, json_response, origin_of, read_json_object, route, services_of


@route("PUT", "/invite/{roomId}/{eventId}", auth=Auth.SERVER, prefixes=FEDERATION_V1)
async def send_invite_v1(request: web.Request) -> web.Response:
    """PUT /_matrix/federation/v1/invite/{roomId}/{eventId}"""
    # Spec (Server ACLs): this endpoint MUST be protected.
    await services_of(request).federation_reads.check_acl(request.match_info["roomId"], origin_of(request))
    body = await read_json_object(request)
    return json_response(await services_of(request).federation_membership.on_invite_v1(
        origin_of(request), request.match_info["roomId"], request.match_info["eventId"], body))
