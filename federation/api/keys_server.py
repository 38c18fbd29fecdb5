"""Spec file: server-server/keys_server.yaml."""

from aiohttp import web

from homeserver.api.http import KEY_V2, Auth, json_response, route, services_of


@route("GET", "/server", auth=Auth.NONE, prefixes=KEY_V2)
async def get_server_key(request: web.Request) -> web.Response:
    """GET /_matrix/key/v2/server"""
    return json_response(services_of(request).server_keys.own_keys())
