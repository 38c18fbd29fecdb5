"""Spec file: client-server/admin.yaml."""

from aiohttp import web

from homeserver.api.http import (
    CLIENT_BASE, Auth, json_response, read_json_object, requester_of, route, services_of,
)


@route("GET", "/v3/admin/whois/{userId}", auth=Auth.USER, prefixes=CLIENT_BASE)
async def get_who_is(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/admin/whois/{userId}"""
    services = services_of(request)
    return json_response(await services.devices.whois(
        requester_of(request), request.match_info["userId"], services.config.server_name))


@route("GET", "/v1/admin/suspend/{userId}", auth=Auth.ADMIN, prefixes=CLIENT_BASE)
async def get_admin_suspend_user(request: web.Request) -> web.Response:
    """GET /_matrix/client/v1/admin/suspend/{userId}"""
    return json_response(await services_of(request).admin_user_moderation.spec_flag(
        requester_of(request), request.match_info["userId"], "suspended"))


@route("PUT", "/v1/admin/suspend/{userId}", auth=Auth.ADMIN, prefixes=CLIENT_BASE)
async def set_admin_suspend_user(request: web.Request) -> web.Response:
    """PUT /_matrix/client/v1/admin/suspend/{userId}"""
    return json_response(await services_of(request).admin_user_moderation.set_spec_flag(
        requester_of(request), request.match_info["userId"], "suspended", await read_json_object(request)))


@route("GET", "/v1/admin/lock/{userId}", auth=Auth.ADMIN, prefixes=CLIENT_BASE)
async def get_admin_lock_user(request: web.Request) -> web.Response:
    """GET /_matrix/client/v1/admin/lock/{userId}"""
    return json_response(await services_of(request).admin_user_moderation.spec_flag(
        requester_of(request), request.match_info["userId"], "locked"))


@route("PUT", "/v1/admin/lock/{userId}", auth=Auth.ADMIN, prefixes=CLIENT_BASE)
async def set_admin_lock_user(request: web.Request) -> web.Response:
    """PUT /_matrix/client/v1/admin/lock/{userId}"""
    return json_response(await services_of(request).admin_user_moderation.set_spec_flag(
        requester_of(request), request.match_info["userId"], "locked", await read_json_object(request)))
