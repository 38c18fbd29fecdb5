"""Spec file: client-server/threads_list.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, int_param, json_response, requester_of, route, services_of


@route("GET", "/rooms/{roomId}/threads", auth=Auth.USER, prefixes=("/_matrix/client/v1",))
async def get_thread_roots(request: web.Request) -> web.Response:
    """GET /_matrix/client/v1/rooms/{roomId}/threads"""
    q = request.query
    limit = int_param(request, "limit", 50)
    body = await services_of(request).relations.threads(
        requester_of(request), request.match_info["roomId"], include=q.get("include", "all"),
        from_token=q.get("from"), limit=limit,
    )
    return json_response(body)
