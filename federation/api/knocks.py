"""Spec file: server-server/knocks.yaml."""

from aiohttp import web

from homeserver.api.http import FEDERATION_V1, Auth, json_response, origin_of, read_json_object, route, services_of


@route("GET", "/make_knock/{roomId}/{userId}", auth=Auth.SERVER, prefixes=FEDERATION_V1)
async def make_knock(request: web.Request) -> web.Response:
    """GET /_matrix/federation/v1/make_knock/{roomId}/{userId}"""
    # Spec (Server ACLs): this endpoint MUST be protected.
    await services_of(request).federation_reads.check_acl(request.match_info["roomId"], origin_of(request))
    versions = request.query.getall("ver", ["1"])
    return json_response(await services_of(request).federation_membership.make_membership(
        origin_of(request), request.match_info["roomId"], request.match_info["userId"], "knock", versions))


@route("PUT", "/send_knock/{roomId}/{eventId}", auth=Auth.SERVER, prefixes=FEDERATION_V1)
async def send_knock(request: web.Request) -> web.Response:
    """PUT /_matrix/federation/v1/send_knock/{roomId}/{eventId}"""
    # Spec (Server ACLs): this endpoint MUST be protected.
    await services_of(request).federation_reads.check_acl(request.match_info["roomId"], origin_of(request))
    body = await read_json_object(request)
    membership = services_of(request).federation_membership
    room_id = request.match_info["roomId"]
    await membership.send_membership(origin_of(request), room_id, request.match_info["eventId"], body, "knock")
    return json_response({"knock_room_state": await membership.room_state_pdus(room_id)})
