"""Spec file: client-server/relations.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, int_param, json_response, requester_of, route, services_of


async def _relations(request: web.Request, rel_type: str | None, event_type: str | None) -> web.Response:
    q = request.query
    limit = int_param(request, "limit", 50)
    body = await services_of(request).relations.relations(
        requester_of(request), request.match_info["roomId"], request.match_info["eventId"],
        rel_type=rel_type, event_type=event_type, from_token=q.get("from"), to_token=q.get("to"),
        direction=q.get("dir", "b"), limit=limit,
    )
    return json_response(body)


@route("GET", "/rooms/{roomId}/relations/{eventId}", auth=Auth.USER, prefixes=("/_matrix/client/v1",))
async def get_relating_events(request: web.Request) -> web.Response:
    """GET /_matrix/client/v1/rooms/{roomId}/relations/{eventId}"""
    return await _relations(request, None, None)


@route("GET", "/rooms/{roomId}/relations/{eventId}/{relType}", auth=Auth.USER, prefixes=("/_matrix/client/v1",))
async def get_relating_events_with_rel_type(request: web.Request) -> web.Response:
    """GET /_matrix/client/v1/rooms/{roomId}/relations/{eventId}/{relType}"""
    return await _relations(request, request.match_info["relType"], None)


@route("GET", "/rooms/{roomId}/relations/{eventId}/{relType}/{eventType}", auth=Auth.USER,
       prefixes=("/_matrix/client/v1",))
async def get_relating_events_with_rel_type_and_event_type(request: web.Request) -> web.Response:
    """GET /_matrix/client/v1/rooms/{roomId}/relations/{eventId}/{relType}/{eventType}"""
    return await _relations(request, request.match_info["relType"], request.match_info["eventType"])
