"""Spec file: client-server/room_state.yaml."""

from aiohttp import web

from homeserver.api.client.delayed_events import delay_param
from homeserver.api.http import (
    Auth, appservice_ts, json_response, read_json_object, requester_of, route, services_of,
)


@route("PUT", "/rooms/{roomId}/state/{eventType}/{stateKey}", auth=Auth.USER, guest=True,
       patterns={"stateKey": "[^/]*"})
async def set_room_state_with_key(request: web.Request) -> web.Response:
    """PUT /_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}"""
    body = await read_json_object(request, allow_empty=True)
    m = request.match_info
    if (delay := delay_param(request)) is not None:  # MSC4140: schedule it instead
        return await _schedule(request, m.get("stateKey", ""), body, delay)
    requester = requester_of(request)
    event_id = await services_of(request).messaging.send_state(
        requester, m["roomId"], m["eventType"], m.get("stateKey", ""), body,
        origin_server_ts=appservice_ts(request, requester),
    )
    return json_response({"event_id": event_id})


@route("PUT", "/rooms/{roomId}/state/{eventType}", auth=Auth.USER, guest=True, variant_of="/rooms/{roomId}/state/{eventType}/{stateKey}")
async def set_room_state_without_key(request: web.Request) -> web.Response:
    """PUT /_matrix/client/v3/rooms/{roomId}/state/{eventType}

    The spec's path with an empty state key: clients send it without the trailing slash.
    """
    body = await read_json_object(request, allow_empty=True)
    m = request.match_info
    if (delay := delay_param(request)) is not None:  # MSC4140: schedule it instead
        return await _schedule(request, "", body, delay)
    requester = requester_of(request)
    event_id = await services_of(request).messaging.send_state(
        requester, m["roomId"], m["eventType"], "", body, origin_server_ts=appservice_ts(request, requester)
    )
    return json_response({"event_id": event_id})


async def _schedule(request: web.Request, state_key: str, body: dict, delay: int) -> web.Response:
    m = request.match_info
    delay_id = await services_of(request).delayed_events.schedule(
        requester_of(request), m["roomId"], m["eventType"], state_key, body, delay)
    return json_response({"delay_id": delay_id})
