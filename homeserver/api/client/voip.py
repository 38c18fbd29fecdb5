"""Spec file: client-server/voip.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, json_response, requester_of, route, services_of


@route("GET", "/voip/turnServer", auth=Auth.USER, guest=True, rate_limited=True)
async def get_turn_server(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/voip/turnServer"""
    return json_response(services_of(request).turn.credentials(requester_of(request)))
