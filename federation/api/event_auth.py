"""Spec file: server-server/event_auth.yaml."""

from aiohttp import web

from homeserver.api.http import FEDERATION_V1, Auth, json_response, origin_of, route, services_of


@route("GET", "/event_auth/{roomId}/{eventId}", auth=Auth.SERVER, prefixes=FEDERATION_V1)
async def get_event_auth(request: web.Request) -> web.Response:
    """GET /_matrix/federation/v1/event_auth/{roomId}/{eventId}"""
    reads, origin, room_id = services_of(request).federation_reads, origin_of(request), request.match_info["roomId"]
    await reads.check_acl(room_id, origin)
    return json_response(await reads.get_event_auth(origin, room_id, request.match_info["eventId"]))
