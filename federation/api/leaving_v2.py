"""Spec file: server-server/leaving-v2.yaml."""

from aiohttp import web

from homeserver.api.http import FEDERATION_V1, FEDERATION_V2, Auth, json_response, origin_of, read_json_object, route, services_of


@route("PUT", "/send_leave/{roomId}/{eventId}", auth=Auth.SERVER, prefixes=FEDERATION_V2)
async def send_leave_v2(request: web.Request) -> web.Response:
    """PUT /_matrix/federation/v2/send_leave/{roomId}/{eventId}"""
    # Spec (Server ACLs): this endpoint MUST be protected.
    await services_of(request).federation_reads.check_acl(request.match_info["roomId"], origin_of(request))
    body = await read_json_object(request)
    await services_of(request).federation_membership.send_membership(
        origin_of(request), request.match_info["roomId"], request.match_info["eventId"], body, "leave")
    return json_response({})


@route("PUT", "/send_leave/{roomId}/{eventId}", auth=Auth.SERVER, prefixes=FEDERATION_V1,
       variant_of="/send_leave/{roomId}/{eventId}")
async def send_leave_v1(request: web.Request) -> web.Response:
    """PUT /_matrix/federation/v1/send_leave/{roomId}/{eventId}

    The v1 form, deprecated and since dropped from the spec, still sent by older servers (and
    sytest): the same leave, its answer wrapped as `[200, {}]`.
    """
    await services_of(request).federation_reads.check_acl(request.match_info["roomId"], origin_of(request))
    body = await read_json_object(request)
    await services_of(request).federation_membership.send_membership(
        origin_of(request), request.match_info["roomId"], request.match_info["eventId"], body, "leave")
    return json_response([200, {}])
