"""Spec file: client-server/mutual_rooms.yaml."""

from aiohttp import web

from homeserver.api.http import CLIENT_V1, Auth, json_response, requester_of, route, services_of


@route("GET", "/mutual_rooms", auth=Auth.USER, prefixes=CLIENT_V1, rate_limited=True)
async def get_mutual_rooms(request: web.Request) -> web.Response:
    """GET /_matrix/client/v1/mutual_rooms"""
    rooms, count, next_batch = await services_of(request).messaging.mutual_rooms(
        requester_of(request), request.query.get("user_id"), request.query.get("from"))
    body: dict = {"joined": rooms, "count": count}
    if next_batch is not None:
        body["next_batch"] = next_batch
    return json_response(body)
