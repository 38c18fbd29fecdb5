"""Spec file: client-server/logout.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, json_response, requester_of, route, services_of


@route("POST", "/logout", auth=Auth.USER, guest=True, allow_locked=True)
async def logout(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/logout"""
    await services_of(request).devices.log_out(requester_of(request))
    return json_response({})


@route("POST", "/logout/all", auth=Auth.USER, allow_locked=True)
async def logout_all(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/logout/all"""
    requester = requester_of(request)
    await services_of(request).devices.delete_all_devices(requester.user_id)
    return json_response({})
