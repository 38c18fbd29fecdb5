"""Spec file: client-server/password_management.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, json_response, read_json_object, requester_of, route, services_of


@route("POST", "/account/password", auth=Auth.USER, rate_limited=True)
async def change_password(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/account/password"""
    body = await read_json_object(request)
    await services_of(request).accounts.change_password(requester_of(request), body)
    return json_response({})


@route("POST", "/account/password/msisdn/requestToken", auth=Auth.NONE, rate_limited=True)
async def request_token_to_reset_password_msisdn(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/account/password/msisdn/requestToken"""
    return json_response(services_of(request).phone_validation.request_token(await read_json_object(request),
                                                                             "password"))
