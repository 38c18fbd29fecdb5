"""Spec file: client-server/password_management.yaml."""

from aiohttp import web

from homeserver.api.http import (Auth, client_ip, json_response, optional_requester_of, read_json_object, route,
                                  services_of)


@route("POST", "/account/password", auth=Auth.OPTIONAL, rate_limited=True)
async def change_password(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/account/password"""
    # Without an access token: a password reset, proven by a validated e-mail address.
    body = await read_json_object(request)
    await services_of(request).accounts.change_password(optional_requester_of(request), body)
    return json_response({})


@route("POST", "/account/password/email/requestToken", auth=Auth.NONE, rate_limited=True)
async def request_token_to_reset_password_email(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/account/password/email/requestToken"""
    body = await read_json_object(request)
    return json_response(await services_of(request).email.request_password_reset_token(
        body, client_ip=client_ip(request)))


@route("POST", "/account/password/msisdn/requestToken", auth=Auth.NONE, rate_limited=True)
async def request_token_to_reset_password_msisdn(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/account/password/msisdn/requestToken"""
    return json_response(services_of(request).phone_validation.request_token(await read_json_object(request),
                                                                             "password"))
