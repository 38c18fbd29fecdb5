"""The server's version, as Synapse's admin API serves it (docs: version_api.md)."""

from aiohttp import web

from homeserver.api.http import SYNAPSE_ADMIN_V1, Auth, json_response, route, services_of


@route("GET", "/server_version", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def get_server_version(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/server_version"""
    return json_response({"server_version": services_of(request).server_info.server_version()})
