"""Spec file: client-server/sync.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, int_param, json_response, requester_of, route, services_of
from homeserver.errors import Codes, MatrixError


@route("GET", "/sync", auth=Auth.USER, guest=True)
async def sync(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/sync"""
    q = request.query
    timeout = int_param(request, "timeout", 0)
    full_state = q.get("full_state", "false")
    if full_state not in ("true", "false"):
        raise MatrixError(400, Codes.INVALID_PARAM, "'full_state' must be true or false")
    services = services_of(request)
    sync_filter = await services.filters.sync_filter(requester_of(request), q.get("filter"))
    body = await services.sync.sync(
        requester_of(request), since=q.get("since"), timeout_ms=timeout, full_state=full_state == "true",
        sync_filter=sync_filter, set_presence=q.get("set_presence"),
    )
    return json_response(body)
