"""Spec file: client-server/account_deactivation.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, json_response, read_json_object, requester_of, route, services_of


@route("POST", "/account/deactivate", auth=Auth.USER, rate_limited=True)
async def deactivate_account(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/account/deactivate"""
    body = await read_json_object(request, allow_empty=True)
    unbound = await services_of(request).accounts.deactivate(requester_of(request), body)
    return json_response({"id_server_unbind_result": unbound})
