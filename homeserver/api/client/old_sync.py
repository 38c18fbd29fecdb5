"""Spec file: client-server/old_sync.yaml (and peeking_events.yaml, whose GET /events with a
`room_id` is the same endpoint)."""

from aiohttp import web

from homeserver.api.http import Auth, int_param, json_response, requester_of, route, services_of
from homeserver.errors import Codes, MatrixError

# Synapse's default long-poll for /events when the client names no timeout.
DEFAULT_TIMEOUT_MS = 30_000


@route("GET", "/events", auth=Auth.USER, guest=True)
async def get_events(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/events"""
    q = request.query
    body = await services_of(request).event_stream.events(
        requester_of(request), from_token=q.get("from") or None,
        timeout_ms=int_param(request, "timeout", DEFAULT_TIMEOUT_MS), room_id=q.get("room_id") or None,
        limit=int_param(request, "limit", 10, minimum=0),
    )
    return json_response(body)


@route("GET", "/initialSync", auth=Auth.USER)
async def initial_sync(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/initialSync"""
    archived = request.query.get("archived", "false")
    if archived not in ("true", "false"):
        raise MatrixError(400, Codes.INVALID_PARAM, "'archived' must be true or false")
    body = await services_of(request).initial_sync.initial_sync(
        requester_of(request), limit=int_param(request, "limit", 10, minimum=0), archived=archived == "true",
    )
    return json_response(body)


@route("GET", "/events/{eventId}", auth=Auth.USER)
async def get_one_event(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/events/{eventId}"""
    event = await services_of(request).event_stream.get_event(requester_of(request), request.match_info["eventId"])
    return json_response(event)
