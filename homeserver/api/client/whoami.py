"""Spec file: client-server/whoami.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, json_response, requester_of, route


@route("GET", "/account/whoami", auth=Auth.USER, guest=True)
async def get_token_owner(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/account/whoami"""
    requester = requester_of(request)
    body = {"user_id": requester.user_id, "is_guest": requester.is_guest}
    # As Synapse: no device_id for an appservice acting without a device, nor for an admin's
    # "login as" token.
    if requester.device_id:
        body["device_id"] = requester.device_id
    return json_response(body)
