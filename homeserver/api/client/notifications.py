"""Spec file: client-server/notifications.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, int_param, json_response, requester_of, route, services_of


@route("GET", "/notifications", auth=Auth.USER)
async def get_notifications(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/notifications"""
    limit = int_param(request, "limit", 50, minimum=1)
    body = await services_of(request).notifications.notifications(
        requester_of(request), from_token=request.query.get("from"), limit=limit, only=request.query.get("only"),
    )
    return json_response(body)
