"""Spec file: client-server/room_summary.yaml."""

from aiohttp import web

from homeserver.api.http import CLIENT_V1, Auth, json_response, optional_requester_of, route, services_of


@route("GET", "/room_summary/{roomIdOrAlias}", auth=Auth.OPTIONAL, prefixes=CLIENT_V1, rate_limited=True)
async def get_room_summary(request: web.Request) -> web.Response:
    """GET /_matrix/client/v1/room_summary/{roomIdOrAlias}"""
    requester = optional_requester_of(request)
    return json_response(await services_of(request).hierarchy.summary(
        requester.user_id if requester else None, request.match_info["roomIdOrAlias"],
        request.query.getall("via", [])))
