"""Spec file: client-server/room_event_by_timestamp.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, json_response, requester_of, route, services_of
from homeserver.errors import Codes, MatrixError


@route("GET", "/rooms/{roomId}/timestamp_to_event", auth=Auth.USER, prefixes=("/_matrix/client/v1",))
async def get_event_by_timestamp(request: web.Request) -> web.Response:
    """GET /_matrix/client/v1/rooms/{roomId}/timestamp_to_event"""
    q = request.query
    try:
        ts = int(q["ts"])
    except KeyError:
        raise MatrixError(400, Codes.MISSING_PARAM, "'ts' is required") from None
    except ValueError:
        raise MatrixError(400, Codes.INVALID_PARAM, "'ts' must be an integer") from None
    body = await services_of(request).timeline.event_at_timestamp(
        requester_of(request), request.match_info["roomId"], ts, q.get("dir", "f")
    )
    return json_response(body)
