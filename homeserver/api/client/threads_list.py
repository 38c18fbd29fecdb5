"""Spec file: client-server/threads_list.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, json_response, requester_of, route, services_of
from homeserver.errors import Codes, MatrixError


@route("GET", "/rooms/{roomId}/threads", auth=Auth.USER, prefixes=("/_matrix/client/v1",))
async def get_thread_roots(request: web.Request) -> web.Response:
    """GET /_matrix/client/v1/rooms/{roomId}/threads"""
    q = request.query
    try:
        limit = int(q.get("limit", "50"))
    except ValueError:
        raise MatrixError(400, Codes.INVALID_PARAM, "'limit' must be an integer") from None
    body = await services_of(request).relations.threads(
        requester_of(request), request.match_info["roomId"], include=q.get("include", "all"),
        from_token=q.get("from"), limit=limit,
    )
    return json_response(body)
