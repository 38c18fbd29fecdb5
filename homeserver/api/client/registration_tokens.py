"""Spec file: client-server/registration_tokens.yaml."""

from aiohttp import web

from homeserver.api.http import CLIENT_V1, Auth, client_ip, json_response, route, services_of
from homeserver.errors import missing_param


@route("GET", "/register/m.login.registration_token/validity", auth=Auth.NONE, rate_limited=True, prefixes=CLIENT_V1)
async def registration_token_validity(request: web.Request) -> web.Response:
    """GET /_matrix/client/v1/register/m.login.registration_token/validity"""
    token = request.query.get("token")
    if token is None:
        raise missing_param("Missing 'token' query parameter")
    valid = await services_of(request).registration_tokens.is_valid(token, client_ip=client_ip(request))
    return json_response({"valid": valid})
