"""Spec file: client-server/receipts.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, json_response, read_json_object, requester_of, route, services_of


@route("POST", "/rooms/{roomId}/receipt/{receiptType}/{eventId}", auth=Auth.USER)
async def post_receipt(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/rooms/{roomId}/receipt/{receiptType}/{eventId}"""
    m = request.match_info
    body = await read_json_object(request, allow_empty=True)
    await services_of(request).receipts.post_receipt(
        requester_of(request), m["roomId"], m["receiptType"], m["eventId"], body
    )
    return json_response({})
