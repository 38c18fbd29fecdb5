"""Spec file: server-server/joins-v2.yaml."""

from aiohttp import web

from homeserver.api.http import FEDERATION_V1, FEDERATION_V2, Auth, bool_param, json_response, origin_of, read_json_object, route, services_of


@route("PUT", "/send_join/{roomId}/{eventId}", auth=Auth.SERVER, prefixes=FEDERATION_V2)
async def send_join_v2(request: web.Request) -> web.Response:
    """PUT /_matrix/federation/v2/send_join/{roomId}/{eventId}"""
    # Spec (Server ACLs): this endpoint MUST be protected.
    await services_of(request).federation_reads.check_acl(request.match_info["roomId"], origin_of(request))
    omit_members = bool_param(request, "omit_members")
    body = await read_json_object(request)
    membership = services_of(request).federation_membership
    room_id = request.match_info["roomId"]
    event = await membership.send_membership(origin_of(request), room_id, request.match_info["eventId"], body, "join")
    # MSC3706: the joining server may accept the state without the room's members.
    answers = services_of(request).federation_join_answers
    return json_response(await answers.answer(room_id, event, omit_members=omit_members))


@route("PUT", "/send_join/{roomId}/{eventId}", auth=Auth.SERVER, prefixes=FEDERATION_V1,
       variant_of="/send_join/{roomId}/{eventId}")
async def send_join_v1(request: web.Request) -> web.Response:
    """PUT /_matrix/federation/v1/send_join/{roomId}/{eventId}

    The v1 form, deprecated and since dropped from the spec, still sent by older servers (and
    sytest): the same join, its answer wrapped as `[200, answer]`.
    """
    await services_of(request).federation_reads.check_acl(request.match_info["roomId"], origin_of(request))
    body = await read_json_object(request)
    membership = services_of(request).federation_membership
    room_id = request.match_info["roomId"]
    event = await membership.send_membership(origin_of(request), room_id, request.match_info["eventId"], body, "join")
    return json_response([200, await services_of(request).federation_join_answers.answer(room_id, event)])
