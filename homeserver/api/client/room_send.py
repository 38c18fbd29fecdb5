"""Spec file: client-server/room_send.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, appservice_ts, json_response, read_json_object, requester_of, route, services_of


@route("PUT", "/rooms/{roomId}/send/{eventType}/{txnId}", auth=Auth.USER, guest=True)
async def send_message(request: web.Request) -> web.Response:
    """PUT /_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}"""
    body = await read_json_object(request, allow_empty=True)
    m = request.match_info
    requester = requester_of(request)
    event_id = await services_of(request).messaging.send_message(
        requester, m["roomId"], m["eventType"], m["txnId"], body, origin_server_ts=appservice_ts(request, requester)
    )
    return json_response({"event_id": event_id})
