"""Spec file: client-server/administrative_contact.yaml."""

from aiohttp import web

from homeserver.api.http import (CLIENT_UNSTABLE, CLIENT_V3, Auth, client_ip, json_response, read_json_object, requester_of,
                                  route, services_of)

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
    body = await read_json_object(request)
    unbound = await services_of(request).threepids.unbind(requester_of(request), body, delete=True)
    return json_response({"id_server_unbind_result": unbound})


@route("GET", "/account/3pid", auth=Auth.USER)
async def get_account3_pi_ds(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/account/3pid"""
    return json_response(await services_of(request).threepids.account_threepids(requester_of(request).user_id))


@route("POST", "/account/3pid", auth=Auth.USER, rate_limited=True)
async def post3_pi_ds(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/account/3pid"""
    body = await read_json_object(request)
    await services_of(request).threepids.add_with_creds(requester_of(request), body)
    return json_response({})


@route("POST", "/account/3pid/add", auth=Auth.USER, rate_limited=True)
async def add3_pid(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/account/3pid/add"""
    body = await read_json_object(request)
    await services_of(request).threepids.add(requester_of(request), body)
    return json_response({})


@route("POST", "/account/3pid/email/requestToken", auth=Auth.NONE, rate_limited=True)
async def request_token_to3_pid_email(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/account/3pid/email/requestToken"""
    body = await read_json_object(request)
    return json_response(await services_of(request).email.request_token(body, for_registration=False,
                                                                        client_ip=client_ip(request)))


@route("POST", "/account/3pid/msisdn/requestToken", auth=Auth.NONE, rate_limited=True)
async def request_token_to3_pidmsisdn(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/account/3pid/msisdn/requestToken"""
    return json_response(services_of(request).phone_validation.request_token(await read_json_object(request), "add"))
