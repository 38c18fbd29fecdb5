"""Spec file: client-server/redaction.yaml."""

from aiohttp import web

from homeserver.api.client.membership_common import reason_of
from homeserver.api.http import Auth, json_response, read_json_object, requester_of, route, services_of


@route("PUT", "/rooms/{roomId}/redact/{eventId}/{txnId}", auth=Auth.USER)
async def redact_event(request: web.Request) -> web.Response:
    """PUT /_matrix/client/v3/rooms/{roomId}/redact/{eventId}/{txnId}"""
    body = await read_json_object(request, allow_empty=True)
    m = request.match_info
    event_id = await services_of(request).messaging.redact(
        requester_of(request), m["roomId"], m["eventId"], m["txnId"], reason_of(body)
    )
    return json_response({"event_id": event_id})
