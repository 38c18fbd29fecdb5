"""Spec file: client-server/to_device.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, json_response, read_json_object, requester_of, route, services_of


@route("PUT", "/sendToDevice/{eventType}/{txnId}", auth=Auth.USER, guest=True)
async def send_to_device(request: web.Request) -> web.Response:
    """PUT /_matrix/client/v3/sendToDevice/{eventType}/{txnId}"""
    m = request.match_info
    body = await read_json_object(request)
    await services_of(request).to_device.send(requester_of(request), m["eventType"], m["txnId"], body)
    return json_response({})
