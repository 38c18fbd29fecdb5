"""Spec file: server-server/events.yaml."""

from aiohttp import web

from homeserver.api.http import FEDERATION_V1, Auth, int_param, json_response, origin_of, route, services_of
from homeserver.errors import missing_param


def _event_id(request: web.Request) -> str:
    value = request.query.get("event_id")
    if not value:
        raise missing_param("'event_id' is required")
    return value


@route("GET", "/state/{roomId}", auth=Auth.SERVER, prefixes=FEDERATION_V1)
async def get_room_state(request: web.Request) -> web.Response:
    """GET /_matrix/federation/v1/state/{roomId}"""
    reads, origin, room_id = services_of(request).federation_reads, origin_of(request), request.match_info["roomId"]
    await reads.check_acl(room_id, origin)
    return json_response(await reads.get_state(origin, room_id, _event_id(request)))


@route("GET", "/state_ids/{roomId}", auth=Auth.SERVER, prefixes=FEDERATION_V1)
async def get_room_state_ids(request: web.Request) -> web.Response:
    """GET /_matrix/federation/v1/state_ids/{roomId}"""
    reads, origin, room_id = services_of(request).federation_reads, origin_of(request), request.match_info["roomId"]
    await reads.check_acl(room_id, origin)
    return json_response(await reads.get_state_ids(origin, room_id, _event_id(request)))


@route("GET", "/event/{eventId}", auth=Auth.SERVER, prefixes=FEDERATION_V1)
async def get_event(request: web.Request) -> web.Response:
    """GET /_matrix/federation/v1/event/{eventId}"""
    # The event's room, and so its ACL, is known once the event is found: the service checks it.
    reads = services_of(request).federation_reads
    return json_response(await reads.get_event(origin_of(request), request.match_info["eventId"]))


@route("GET", "/timestamp_to_event/{roomId}", auth=Auth.SERVER, prefixes=FEDERATION_V1)
async def get_event_by_timestamp(request: web.Request) -> web.Response:
    """GET /_matrix/federation/v1/timestamp_to_event/{roomId}"""
    reads, origin, room_id = services_of(request).federation_reads, origin_of(request), request.match_info["roomId"]
    await reads.check_acl(room_id, origin)
    direction = request.query.get("dir")
    if direction is None:
        raise missing_param("'dir' is required")
    return json_response(await reads.timestamp_to_event(origin, room_id, int_param(request, "ts"), direction))
