"""Purging a room's history, as Synapse's admin API serves it (docs/admin_api/purge_history_api.md)."""

from aiohttp import web

from homeserver.api.http import SYNAPSE_ADMIN_V1, Auth, json_response, read_json_object, requester_of, route, services_of


@route("POST", "/purge_history/{roomId}", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def purge_history(request: web.Request) -> web.Response:
    """POST /_synapse/admin/v1/purge_history/{roomId}"""
    purge_id = await services_of(request).purge_history.start(
        requester_of(request).user_id, request.match_info["roomId"], None,
        await read_json_object(request, allow_empty=True))
    return json_response({"purge_id": purge_id})


@route("POST", "/purge_history/{roomId}/{eventId}", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def purge_history_up_to_event(request: web.Request) -> web.Response:
    """POST /_synapse/admin/v1/purge_history/{roomId}/{eventId}"""
    purge_id = await services_of(request).purge_history.start(
        requester_of(request).user_id, request.match_info["roomId"], request.match_info["eventId"],
        await read_json_object(request, allow_empty=True))
    return json_response({"purge_id": purge_id})


@route("GET", "/purge_history_status/{purgeId}", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def get_purge_history_status(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/purge_history_status/{purgeId}"""
    return json_response(await services_of(request).purge_history.status(request.match_info["purgeId"]))
