"""Spec file: client-server/login.yaml."""

from aiohttp import web

from homeserver.api.client.registration import login_response
from homeserver.api.http import Auth, access_token_of, client_ip, json_response, read_json_object, route, services_of
from homeserver.errors import Codes, MatrixError
from homeserver.services.accounts.accounts import APPSERVICE_LOGIN_TYPE


@route("GET", "/login", auth=Auth.NONE)
async def get_login_flows(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/login"""
    services = services_of(request)
    return json_response({"flows": [{"type": "m.login.password"}, *services.cas.login_flows(),
                                    *services.login_tokens.login_flows(sso=services.cas.enabled),
                                    {"type": APPSERVICE_LOGIN_TYPE}]})


@route("POST", "/login", auth=Auth.NONE, rate_limited=True)
async def login(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/login"""
    body = await read_json_object(request)
    login_type = body.get("type")
    if login_type == "m.login.token":  # from single sign-on or POST /login/get_token
        result = await services_of(request).login_tokens.login_with_token(body, client_ip=client_ip(request))
        return json_response(login_response(result))
    if login_type == APPSERVICE_LOGIN_TYPE:
        result = await services_of(request).accounts.login_as_appservice(access_token_of(request), body)
        return json_response(login_response(result))
    if login_type != "m.login.password":
        raise MatrixError(400, Codes.UNKNOWN, f"Unknown login type {login_type!r}")
    result = await services_of(request).accounts.login_with_password(body, client_ip=client_ip(request))
    return json_response(login_response(result))
