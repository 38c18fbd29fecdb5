"""POST /rooms/{roomId}/send/{eventType}: sending without a transaction ID.

No OpenAPI file defines it (the spec has only the PUT form with a transaction ID); Synapse
serves it and sytest uses it, so it lives in this feature module. A retried POST sends again.
"""

from aiohttp import web

from homeserver.api.client.delayed_events import delay_param
from homeserver.api.http import Auth, json_response, read_json_object, requester_of, route, services_of


@route("POST", "/rooms/{roomId}/send/{eventType}", auth=Auth.USER, guest=True)
async def send_message_without_txn(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/rooms/{roomId}/send/{eventType}"""
    body = await read_json_object(request, allow_empty=True)
    m = request.match_info
    if (delay := delay_param(request)) is not None:  # MSC4140: schedule it instead
        delay_id = await services_of(request).delayed_events.schedule(
            requester_of(request), m["roomId"], m["eventType"], None, body, delay)
        return json_response({"delay_id": delay_id})
    event_id = await services_of(request).messaging.send_message(
        requester_of(request), m["roomId"], m["eventType"], None, body
    )
    return json_response({"event_id": event_id})
