"""Spec file: client-server/registration.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, access_token_of, client_ip, json_response, read_json_object, route, services_of
from homeserver.errors import missing_param
from homeserver.services.accounts.accounts import APPSERVICE_LOGIN_TYPE, LoginResult


@route("POST", "/register", auth=Auth.NONE, rate_limited=True)
async def register(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/register"""
    body = await read_json_object(request)
    kind = request.query.get("kind", "user")
    # The route reads no token: only an appservice registering a user sends one (its as_token).
    token = access_token_of(request) if body.get("type") == APPSERVICE_LOGIN_TYPE else None
    result = await services_of(request).accounts.register(body, kind=kind, client_ip=client_ip(request),
                                                          access_token=token)
    return json_response(login_response(result))


@route("GET", "/register/available", auth=Auth.NONE, rate_limited=True)
async def check_username_availability(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/register/available"""
    username = request.query.get("username")
    if username is None:
        raise missing_param("Missing 'username' query parameter")
    await services_of(request).accounts.check_username(username)
    return json_response({"available": True})


@route("POST", "/register/email/requestToken", auth=Auth.NONE, rate_limited=True)
async def request_token_to_register_email(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/register/email/requestToken"""
    body = await read_json_object(request)
    return json_response(await services_of(request).email.request_token(body, for_registration=True,
                                                                        client_ip=client_ip(request)))


def login_response(result: LoginResult) -> dict:
    """The body shared by /register and /login."""
    body: dict = {"user_id": result.user_id}
    if result.tokens is not None:
        body["access_token"] = result.tokens.access_token
        body["device_id"] = result.device_id
        body["home_server"] = result.user_id.split(":", 1)[1]  # deprecated, still read by old clients
        if result.tokens.refresh_token is not None:
            body["refresh_token"] = result.tokens.refresh_token
            body["expires_in_ms"] = result.tokens.expires_in_ms
    return body


@route("POST", "/register/msisdn/requestToken", auth=Auth.NONE, rate_limited=True)
async def request_token_to_register_msisdn(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/register/msisdn/requestToken"""
    return json_response(services_of(request).phone_validation.request_token(await read_json_object(request),
                                                                             "register"))
