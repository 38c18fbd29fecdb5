"""A user's devices, for admins (docs/admin_api/user_admin_api.md, "User devices")."""

from aiohttp import web

from homeserver.api.http import (
    SYNAPSE_ADMIN_V2, Auth, json_response, read_json_object, requester_of, route, services_of,
)


@route("GET", "/users/{userId}/devices", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V2)
async def list_user_devices(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v2/users/{userId}/devices"""
    return json_response(await services_of(request).admin_users.devices(request.match_info["userId"]))


@route("POST", "/users/{userId}/devices", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V2)
async def create_user_device(request: web.Request) -> web.Response:
    """POST /_synapse/admin/v2/users/{userId}/devices"""
    await services_of(request).admin_users.create_device(
        requester_of(request), request.match_info["userId"], await read_json_object(request))
    return json_response({})


@route("POST", "/users/{userId}/delete_devices", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V2)
async def delete_user_devices(request: web.Request) -> web.Response:
    """POST /_synapse/admin/v2/users/{userId}/delete_devices"""
    body = await read_json_object(request)
    await services_of(request).admin_users.delete_devices(requester_of(request), request.match_info["userId"],
                                                          body.get("devices"))
    return json_response({})


@route("GET", "/users/{userId}/devices/{deviceId}", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V2)
async def get_user_device(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v2/users/{userId}/devices/{deviceId}"""
    return json_response(await services_of(request).admin_users.device(
        request.match_info["userId"], request.match_info["deviceId"]))


@route("PUT", "/users/{userId}/devices/{deviceId}", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V2)
async def update_user_device(request: web.Request) -> web.Response:
    """PUT /_synapse/admin/v2/users/{userId}/devices/{deviceId}"""
    await services_of(request).admin_users.update_device(
        requester_of(request), request.match_info["userId"], request.match_info["deviceId"],
        await read_json_object(request, allow_empty=True))
    return json_response({})


@route("DELETE", "/users/{userId}/devices/{deviceId}", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V2)
async def delete_user_device(request: web.Request) -> web.Response:
    """DELETE /_synapse/admin/v2/users/{userId}/devices/{deviceId}"""
    await services_of(request).admin_users.delete_devices(
        requester_of(request), request.match_info["userId"], [request.match_info["deviceId"]])
    return json_response({})
