"""Spec file: client-server/password_management.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, json_response, read_json_object, requester_of, route, services_of


@route("POST", "/account/password", auth=Auth.USER, rate_limited=True)
async def change_password(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/account/password"""
    body = await read_json_object(request)
    await services_of(request).accounts.change_password(requester_of(request), body)
    return json_response({})
