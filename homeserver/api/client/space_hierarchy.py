"""Spec file: client-server/space_hierarchy.yaml."""

from aiohttp import web

from homeserver.api.http import CLIENT_V1, Auth, bool_param, int_param, json_response, requester_of, route, services_of


@route("GET", "/rooms/{roomId}/hierarchy", auth=Auth.USER, prefixes=CLIENT_V1)
async def get_space_hierarchy(request: web.Request) -> web.Response:
    """GET /_matrix/client/v1/rooms/{roomId}/hierarchy"""
    q = request.query
    return json_response(await services_of(request).hierarchy.hierarchy(
        requester_of(request).user_id, request.match_info["roomId"],
        suggested_only=bool_param(request, "suggested_only"),
        limit=int_param(request, "limit") if "limit" in q else None,
        max_depth=int_param(request, "max_depth") if "max_depth" in q else None,
        from_token=q.get("from")))
