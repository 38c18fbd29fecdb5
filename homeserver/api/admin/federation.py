"""Federation destinations, as Synapse's admin API serves them (docs: federation.md)."""

from typing import Any

from aiohttp import web

from homeserver.api.admin.params import direction, offset_paging, page_body
from homeserver.api.http import SYNAPSE_ADMIN_V1, Auth, json_response, requester_of, route, services_of


def _destination_json(row: Any) -> dict[str, Any]:
    """A DestinationRow as Synapse's destination object."""
    return {"destination": row.destination, "retry_last_ts": row.retry_last_ts,
            "retry_interval": row.retry_interval, "failure_ts": row.failure_ts,
            "last_successful_stream_ordering": row.last_successful_stream_ordering}


@route("GET", "/federation/destinations", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def list_destinations(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/federation/destinations

    Offset paging; `order_by` (destination, retry_last_ts, retry_interval, failure_ts,
    last_successful_stream_ordering), `dir`, and `destination` (any part of the name)."""
    start, limit = offset_paging(request)
    rows, total = await services_of(request).admin_destinations.list(
        start, limit, order_by=request.query.get("order_by", "destination"), backwards=direction(request) == "b",
        name_contains=request.query.get("destination"))
    return json_response(page_body("destinations", [_destination_json(r) for r in rows], start, limit, total,
                                   token_as_string=True))


@route("GET", "/federation/destinations/{destination}", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def get_destination(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/federation/destinations/{destination}"""
    row = await services_of(request).admin_destinations.get(request.match_info["destination"])
    return json_response(_destination_json(row))


@route("GET", "/federation/destinations/{destination}/rooms", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def list_destination_rooms(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/federation/destinations/{destination}/rooms

    The rooms whose PDUs the destination acknowledged, with the latest one's stream ordering."""
    start, limit = offset_paging(request)
    rooms, total = await services_of(request).admin_destinations.rooms(
        request.match_info["destination"], start, limit, backwards=direction(request) == "b")
    return json_response(page_body("rooms", [{"room_id": r.room_id, "stream_ordering": r.stream_ordering}
                                             for r in rooms], start, limit, total, token_as_string=True))


@route("POST", "/federation/destinations/{destination}/reset_connection", auth=Auth.ADMIN,
       prefixes=SYNAPSE_ADMIN_V1)
async def reset_destination_connection(request: web.Request) -> web.Response:
    """POST /_synapse/admin/v1/federation/destinations/{destination}/reset_connection

    Forgets the back-off and tries the destination again now (in the background)."""
    await services_of(request).admin_destinations.reset_connection(requester_of(request).user_id,
                                                                   request.match_info["destination"])
    return json_response({})
