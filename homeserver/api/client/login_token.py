"""Spec file: client-server/login_token.yaml."""

from aiohttp import web

from homeserver.api.http import CLIENT_V1, Auth, json_response, read_json_object, requester_of, route, services_of


@route("POST", "/login/get_token", auth=Auth.USER, prefixes=CLIENT_V1, rate_limited=True)
async def generate_login_token(request: web.Request) -> web.Response:
    """POST /_matrix/client/v1/login/get_token"""
    body = await read_json_object(request, allow_empty=True)
    return json_response(await services_of(request).login_tokens.get_token(requester_of(request), body))
