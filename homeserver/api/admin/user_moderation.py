"""Restraining an account, as Synapse's admin API does it (docs/admin_api/user_admin_api.md):
shadow-banning, suspending, logging in as the user."""

from aiohttp import web

from homeserver.api.http import (
    SYNAPSE_ADMIN_V1, Auth, json_response, read_json_object, requester_of, route, services_of,
)


@route("POST", "/users/{userId}/shadow_ban", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def shadow_ban_user(request: web.Request) -> web.Response:
    """POST /_synapse/admin/v1/users/{userId}/shadow_ban"""
    await services_of(request).admin_user_moderation.set_shadow_banned(
        requester_of(request), request.match_info["userId"], True)
    return json_response({})


@route("DELETE", "/users/{userId}/shadow_ban", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def unshadow_ban_user(request: web.Request) -> web.Response:
    """DELETE /_synapse/admin/v1/users/{userId}/shadow_ban"""
    await services_of(request).admin_user_moderation.set_shadow_banned(
        requester_of(request), request.match_info["userId"], False)
    return json_response({})


@route("PUT", "/suspend/{userId}", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def suspend_user(request: web.Request) -> web.Response:
    """PUT /_synapse/admin/v1/suspend/{userId}"""
    return json_response(await services_of(request).admin_user_moderation.suspend(
        requester_of(request), request.match_info["userId"], await read_json_object(request)))


@route("POST", "/users/{userId}/login", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def login_as_user(request: web.Request) -> web.Response:
    """POST /_synapse/admin/v1/users/{userId}/login"""
    return json_response(await services_of(request).admin_user_moderation.login_as(
        requester_of(request), request.match_info["userId"], await read_json_object(request, allow_empty=True)))
