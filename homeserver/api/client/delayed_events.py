"""Delayed events (MSC4140, unstable; no spec file): managing scheduled events.

Scheduling itself is the `org.matrix.msc4140.delay` query parameter of PUT .../send and
PUT .../state (room_send.py, room_state.py), read by `delay_param`. As Synapse, the POST
endpoints take no access token: the delay ID is enough (with a token, only the requester's
own delayed events are found).
"""

from aiohttp import web

from homeserver.api.http import (
    CLIENT_UNSTABLE, Auth, client_ip, json_response, optional_requester_of, read_json_object, requester_of, route,
    services_of,
)
from homeserver.errors import Codes, MatrixError

DELAY_PARAM = "org.matrix.msc4140.delay"
BASE = "/org.matrix.msc4140/delayed_events"


def delay_param(request: web.Request) -> int | None:
    """The requested delay in milliseconds, None when the request is not delayed."""
    raw = request.query.get(DELAY_PARAM)
    if raw is None:
        return None
    try:
        delay = int(raw)
    except ValueError:
        raise MatrixError(400, Codes.INVALID_PARAM, f"'{DELAY_PARAM}' must be an integer") from None
    if delay < 0:
        raise MatrixError(400, Codes.INVALID_PARAM, f"'{DELAY_PARAM}' must not be negative")
    return delay


@route("GET", BASE, auth=Auth.USER, prefixes=CLIENT_UNSTABLE)
async def get_delayed_events(request: web.Request) -> web.Response:
    """GET /_matrix/client/unstable/org.matrix.msc4140/delayed_events"""
    events = await services_of(request).delayed_events.list_for(requester_of(request))
    return json_response({"delayed_events": events})


@route("POST", BASE + "/{delayId}", auth=Auth.OPTIONAL, prefixes=CLIENT_UNSTABLE)
async def update_delayed_event(request: web.Request) -> web.Response:
    """POST /_matrix/client/unstable/org.matrix.msc4140/delayed_events/{delayId}

    The first form of the MSC: the action (cancel, restart, send) in the body.
    """
    body = await read_json_object(request)
    await services_of(request).delayed_events.update(
        optional_requester_of(request), client_ip(request), request.match_info["delayId"], body.get("action"))
    return json_response({})


@route("POST", BASE + "/{delayId}/{action}", auth=Auth.OPTIONAL, prefixes=CLIENT_UNSTABLE,
       patterns={"action": "cancel|restart|send"})
async def act_on_delayed_event(request: web.Request) -> web.Response:
    """POST /_matrix/client/unstable/org.matrix.msc4140/delayed_events/{delayId}/{action}

    Cancel, restart or send now: the action in the path.
    """
    m = request.match_info
    await services_of(request).delayed_events.update(
        optional_requester_of(request), client_ip(request), m["delayId"], m["action"])
    return json_response({})
