"""Spec file: client-server/room_send.yaml."""

from aiohttp import web

from homeserver.api.client.delayed_events import delay_param
from homeserver.api.http import (
    Auth, appservice_ts, json_response, read_json_object, requester_of, route, services_of,
)


@route("PUT", "/rooms/{roomId}/send/{eventType}/{txnId}", auth=Auth.USER, guest=True)
async def send_message(request: web.Request) -> web.Response:
    """PUT /_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}"""
    body = await read_json_object(request, allow_empty=True)
    m = request.match_info
    if (delay := delay_param(request)) is not None:  # MSC4140: schedule it instead
        delay_id = await services_of(request).delayed_events.schedule(
            requester_of(request), m["roomId"], m["eventType"], None, body, delay, txn_id=m["txnId"])
        return json_response({"delay_id": delay_id})
    requester = requester_of(request)
    event_id = await services_of(request).messaging.send_message(
        requester, m["roomId"], m["eventType"], m["txnId"], body, origin_server_ts=appservice_ts(request, requester)
    )
    return json_response({"event_id": event_id})
