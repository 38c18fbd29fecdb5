"""Spec file: client-server/whoami.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, json_response, requester_of, route


@route("GET", "/account/whoami", auth=Auth.USER, guest=True)
async def get_token_owner(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/account/whoami"""
    requester = requester_of(request)
    body = {"user_id": requester.user_id, "device_id": requester.device_id, "is_guest": requester.is_guest}
    if not requester.device_id:  # an appservice acting without a device (as Synapse: no device_id)
        del body["device_id"]
    return json_response(body)
