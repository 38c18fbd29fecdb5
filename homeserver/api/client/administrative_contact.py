"""Spec file: client-server/administrative_contact.yaml (binding 3PIDs on identity servers)."""

from aiohttp import web

from homeserver.api.http import CLIENT_UNSTABLE, CLIENT_V3, Auth, json_response, read_json_object, requester_of, route, services_of

# Also under /unstable, as Synapse serves bind and unbind (sytest uses it).
WITH_UNSTABLE = CLIENT_V3 + CLIENT_UNSTABLE


@route("POST", "/account/3pid/bind", auth=Auth.USER, rate_limited=True, prefixes=WITH_UNSTABLE)
async def bind3_pid(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/account/3pid/bind"""
    body = await read_json_object(request)
    await services_of(request).threepids.bind(requester_of(request), body)
    return json_response({})


@route("POST", "/account/3pid/unbind", auth=Auth.USER, rate_limited=True, prefixes=WITH_UNSTABLE)
async def unbind3pid_from_account(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/account/3pid/unbind"""
    body = await read_json_object(request)
    unbound = await services_of(request).threepids.unbind(requester_of(request), body)
    return json_response({"id_server_unbind_result": unbound})


@route("POST", "/account/3pid/delete", auth=Auth.USER, rate_limited=True)
async def delete3pid_from_account(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/account/3pid/delete"""
    # No 3PID is kept on the account itself: deleting one unbinds it from identity servers.
    body = await read_json_object(request)
    unbound = await services_of(request).threepids.unbind(requester_of(request), body)
    return json_response({"id_server_unbind_result": unbound})
