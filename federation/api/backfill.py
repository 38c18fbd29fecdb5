"""Spec file: server-server/backfill.yaml."""

from typing import Any

from aiohttp import web

from homeserver.api.http import FEDERATION_V1, Auth, int_param, json_response, origin_of, read_json_object, route, services_of
from homeserver.errors import Codes, MatrixError, missing_param
from homeserver.services.federation.reads import DEFAULT_MISSING_EVENTS_LIMIT


@route("GET", "/backfill/{roomId}", auth=Auth.SERVER, prefixes=FEDERATION_V1)
async def backfill_room(request: web.Request) -> web.Response:
    """GET /_matrix/federation/v1/backfill/{roomId}"""
    reads, origin, room_id = services_of(request).federation_reads, origin_of(request), request.match_info["roomId"]
    await reads.check_acl(room_id, origin)
    event_ids = request.query.getall("v", [])
    if not event_ids:
        raise missing_param("'v' is required")
    limit = int_param(request, "limit", minimum=0)
    return json_response(await reads.backfill(origin, room_id, event_ids, limit))


@route("POST", "/get_missing_events/{roomId}", auth=Auth.SERVER, prefixes=FEDERATION_V1)
async def get_missing_previous_events(request: web.Request) -> web.Response:
    """POST /_matrix/federation/v1/get_missing_events/{roomId}"""
    reads, origin, room_id = services_of(request).federation_reads, origin_of(request), request.match_info["roomId"]
    await reads.check_acl(room_id, origin)
    body = await read_json_object(request)
    return json_response(await reads.get_missing_events(
        origin, room_id, _event_ids(body, "earliest_events"), _event_ids(body, "latest_events"),
        _integer(body, "limit", DEFAULT_MISSING_EVENTS_LIMIT), _integer(body, "min_depth", 0),
    ))


def _event_ids(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key)
    if value is None:
        raise missing_param(f"'{key}' is required")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MatrixError(400, Codes.BAD_JSON, f"'{key}' must be a list of event IDs")
    return value


def _integer(body: dict[str, Any], key: str, default: int) -> int:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MatrixError(400, Codes.BAD_JSON, f"'{key}' must be a non-negative integer")
    return value
