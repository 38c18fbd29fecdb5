"""Simplified sliding sync (MSC4186), at its unstable prefix. No spec OpenAPI file defines it."""

from aiohttp import web

from homeserver.api.http import (
    CLIENT_UNSTABLE, Auth, int_param, json_response, read_json_object, requester_of, route, services_of,
)


@route("POST", "/org.matrix.simplified_msc3575/sync", auth=Auth.USER, guest=True, prefixes=CLIENT_UNSTABLE)
async def sliding_sync(request: web.Request) -> web.Response:
    """POST /_matrix/client/unstable/org.matrix.simplified_msc3575/sync"""
    body = await read_json_object(request, allow_empty=True)
    timeout = int_param(request, "timeout", minimum=0) if "timeout" in request.query else None
    response = await services_of(request).sliding_sync.sync(
        requester_of(request), body, pos=request.query.get("pos"), timeout_ms=timeout,
        set_presence=request.query.get("set_presence"),
    )
    return json_response(response)
