"""Spec file: client-server/wellknown.yaml."""

from aiohttp import web

from homeserver.api.http import WELL_KNOWN, Auth, json_response, route, services_of


@route("GET", "/matrix/client", auth=Auth.NONE, prefixes=WELL_KNOWN)
async def get_wellknown(request: web.Request) -> web.Response:
    """GET /.well-known/matrix/client"""
    config = services_of(request).config
    return json_response({"m.homeserver": {"base_url": config.client_base_url}})
