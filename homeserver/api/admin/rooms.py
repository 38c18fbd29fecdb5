"""Rooms, as Synapse's admin API serves them (docs/admin_api/rooms.md)."""

from aiohttp import web

from homeserver.api.client.message_pagination import page_body, room_event_filter
from homeserver.api.http import (
    SYNAPSE_ADMIN_V1,
    SYNAPSE_ADMIN_V2,
    Auth,
    int_param,
    json_response,
    read_json_object,
    requester_of,
    route,
    services_of,
)
from homeserver.errors import Codes, MatrixError


def _optional_bool(request: web.Request, name: str) -> bool | None:
    value = request.query.get(name)
    if value is None:
        return None
    if value not in ("true", "false"):
        raise MatrixError(400, Codes.INVALID_PARAM, f"Query parameter {name!r} must be one of ['true', 'false']")
    return value == "true"


@route("GET", "/rooms", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def list_rooms(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/rooms"""
    q = request.query
    return json_response(await services_of(request).admin_rooms.list_rooms(
        offset=int_param(request, "from", 0), limit=int_param(request, "limit", 100),
        order_by=q.get("order_by", "name"), direction=q.get("dir", "f"), search_term=q.get("search_term"),
        public_rooms=_optional_bool(request, "public_rooms"), empty_rooms=_optional_bool(request, "empty_rooms")))


@route("GET", "/rooms/{roomId}", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def get_room_details(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/rooms/{roomId}"""
    return json_response(await services_of(request).admin_rooms.details(request.match_info["roomId"]))


@route("GET", "/rooms/{roomId}/members", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def get_room_members(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/rooms/{roomId}/members"""
    return json_response(await services_of(request).admin_rooms.members(request.match_info["roomId"]))


@route("GET", "/rooms/{roomId}/state", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def get_room_state(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/rooms/{roomId}/state"""
    state = await services_of(request).admin_rooms.state(
        requester_of(request), request.match_info["roomId"], request.query.get("type") or None)
    return json_response({"state": state})


@route("GET", "/rooms/{roomId}/messages", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def get_room_messages(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/rooms/{roomId}/messages"""
    q = request.query
    page = await services_of(request).admin_rooms.messages(
        requester_of(request), request.match_info["roomId"], from_token=q.get("from"), to_token=q.get("to"),
        direction=q.get("dir", "f"), limit=int_param(request, "limit", 10, minimum=0),
        event_filter=room_event_filter(request))
    return json_response(page_body(page))


@route("GET", "/rooms/{roomId}/context/{eventId}", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def get_room_event_context(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/rooms/{roomId}/context/{eventId}"""
    event_filter = room_event_filter(request) or {}
    return json_response(await services_of(request).admin_rooms.context(
        requester_of(request), request.match_info["roomId"], request.match_info["eventId"],
        int_param(request, "limit", 10), event_filter.get("lazy_load_members") is True))


@route("GET", "/rooms/{roomId}/block", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def get_room_block_status(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/rooms/{roomId}/block"""
    return json_response(await services_of(request).admin_rooms.block_status(request.match_info["roomId"]))


@route("PUT", "/rooms/{roomId}/block", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def block_room(request: web.Request) -> web.Response:
    """PUT /_synapse/admin/v1/rooms/{roomId}/block"""
    return json_response(await services_of(request).admin_rooms.set_blocked(
        requester_of(request).user_id, request.match_info["roomId"], await read_json_object(request)))


@route("GET", "/rooms/{roomIdOrAlias}/forward_extremities", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def get_forward_extremities(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/rooms/{roomIdOrAlias}/forward_extremities"""
    return json_response(await services_of(request).admin_rooms.forward_extremities(
        request.match_info["roomIdOrAlias"]))


@route("DELETE", "/rooms/{roomIdOrAlias}/forward_extremities", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def delete_forward_extremities(request: web.Request) -> web.Response:
    """DELETE /_synapse/admin/v1/rooms/{roomIdOrAlias}/forward_extremities"""
    return json_response(await services_of(request).admin_rooms.delete_forward_extremities(
        requester_of(request).user_id, request.match_info["roomIdOrAlias"]))


@route("POST", "/rooms/{roomIdOrAlias}/make_room_admin", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def make_room_admin(request: web.Request) -> web.Response:
    """POST /_synapse/admin/v1/rooms/{roomIdOrAlias}/make_room_admin"""
    await services_of(request).admin_rooms.make_room_admin(
        requester_of(request).user_id, request.match_info["roomIdOrAlias"],
        await read_json_object(request, allow_empty=True))
    return json_response({})


@route("DELETE", "/rooms/{roomId}", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def delete_room(request: web.Request) -> web.Response:
    """DELETE /_synapse/admin/v1/rooms/{roomId}"""
    return json_response(await services_of(request).room_deletion.delete_now(
        requester_of(request).user_id, request.match_info["roomId"], await read_json_object(request)))


@route("DELETE", "/rooms/{roomId}", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V2)
async def delete_room_in_background(request: web.Request) -> web.Response:
    """DELETE /_synapse/admin/v2/rooms/{roomId}"""
    delete_id = await services_of(request).room_deletion.start_delete(
        requester_of(request).user_id, request.match_info["roomId"], await read_json_object(request))
    return json_response({"delete_id": delete_id})


@route("GET", "/rooms/{roomId}/delete_status", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V2)
async def get_room_delete_statuses(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v2/rooms/{roomId}/delete_status"""
    results = await services_of(request).room_deletion.statuses_of_room(request.match_info["roomId"])
    return json_response({"results": results})


@route("GET", "/rooms/delete_status/{deleteId}", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V2)
async def get_delete_status(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v2/rooms/delete_status/{deleteId}"""
    return json_response(await services_of(request).room_deletion.status(request.match_info["deleteId"]))
