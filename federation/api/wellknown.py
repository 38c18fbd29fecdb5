"""Spec file: server-server/wellknown.yaml."""

from aiohttp import web

from homeserver.api.http import WELL_KNOWN, Auth, json_response, route, services_of
from homeserver.errors import Codes, MatrixError


@route("GET", "/matrix/server", auth=Auth.NONE, prefixes=WELL_KNOWN)
async def get_well_known(request: web.Request) -> web.Response:
    """GET /.well-known/matrix/server"""
    config = services_of(request).config
    if not config.serve_server_wellknown:
        raise MatrixError(404, Codes.NOT_FOUND, "No .well-known/matrix/server here")
    host = config.server_name
    # The delegated server: our own name with the federation port (unless the name has a port).
    if not (host.rsplit(":", 1)[-1].isdigit() and not host.endswith("]")):
        host = f"{host}:{config.federation_port}"
    return json_response({"m.server": host})
