"""Rate limit overrides per user, as Synapse's user admin API ("Override ratelimiting for users")."""

from aiohttp import web

from homeserver.api.http import SYNAPSE_ADMIN_V1, Auth, json_response, read_json_object, requester_of, route, services_of


@route("GET", "/users/{userId}/override_ratelimit", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def get_ratelimit_override(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/users/{userId}/override_ratelimit"""
    return json_response(await services_of(request).user_ratelimit.get(request.match_info["userId"]))


@route("POST", "/users/{userId}/override_ratelimit", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def set_ratelimit_override(request: web.Request) -> web.Response:
    """POST /_synapse/admin/v1/users/{userId}/override_ratelimit"""
    body = await read_json_object(request, allow_empty=True)
    return json_response(await services_of(request).user_ratelimit.set(
        requester_of(request).user_id, request.match_info["userId"], body))


@route("DELETE", "/users/{userId}/override_ratelimit", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def delete_ratelimit_override(request: web.Request) -> web.Response:
    """DELETE /_synapse/admin/v1/users/{userId}/override_ratelimit"""
    await services_of(request).user_ratelimit.delete(requester_of(request).user_id, request.match_info["userId"])
    return json_response({})
