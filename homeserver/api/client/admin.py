"""Spec file: client-server/admin.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, json_response, requester_of, route, services_of


# The spec file writes this path with its version ("/v3/admin/whois/{userId}").
@route("GET", "/v3/admin/whois/{userId}", auth=Auth.USER, prefixes=("/_matrix/client",))
async def get_who_is(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/admin/whois/{userId}"""
    return json_response(await services_of(request).devices.whois(requester_of(request), request.match_info["userId"]))
