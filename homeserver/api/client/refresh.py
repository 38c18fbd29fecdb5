"""Spec file: client-server/refresh.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, json_response, read_json_object, route, services_of
from homeserver.errors import missing_param


@route("POST", "/refresh", auth=Auth.NONE, rate_limited=True)
async def refresh(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/refresh"""
    body = await read_json_object(request)
    token = body.get("refresh_token")
    if not isinstance(token, str) or not token:
        raise missing_param("'refresh_token' must be a string")
    _, issued = await services_of(request).auth.refresh(token)
    return json_response({
        "access_token": issued.access_token,
        "refresh_token": issued.refresh_token,
        "expires_in_ms": issued.expires_in_ms,
    })
