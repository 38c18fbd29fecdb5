"""Spec file: client-server/admin.yaml."""

from aiohttp import web

from homeserver.api.http import CLIENT_BASE, Auth, json_response, requester_of, route, services_of


@route("GET", "/v3/admin/whois/{userId}", auth=Auth.USER, prefixes=CLIENT_BASE)
async def get_who_is(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/admin/whois/{userId}"""
    services = services_of(request)
    return json_response(await services.devices.whois(
        requester_of(request), request.match_info["userId"], services.config.server_name))
