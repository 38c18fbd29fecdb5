"""Spec file: client-server/cross_signing.yaml."""

from aiohttp import web

from homeserver.api.http import CLIENT_UNSTABLE, CLIENT_V3, Auth, json_response, read_json_object, requester_of, route, services_of


# Also under /unstable, as Synapse serves them (older clients and sytest use it).
@route("POST", "/keys/device_signing/upload", auth=Auth.USER, prefixes=CLIENT_V3 + CLIENT_UNSTABLE)
async def upload_cross_signing_keys(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/keys/device_signing/upload"""
    body = await read_json_object(request)
    await services_of(request).e2e_keys.upload_cross_signing(requester_of(request), body)
    return json_response({})


@route("POST", "/keys/signatures/upload", auth=Auth.USER, prefixes=CLIENT_V3 + CLIENT_UNSTABLE)
async def upload_cross_signing_signatures(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/keys/signatures/upload"""
    body = await read_json_object(request)
    return json_response(await services_of(request).e2e_keys.upload_signatures(requester_of(request), body))
