"""Spec file: server-server/user_keys.yaml — our users' device keys and one-time keys, for peers."""

from aiohttp import web

from homeserver.api.http import FEDERATION_V1, Auth, json_response, origin_of, read_json_object, route, services_of


@route("POST", "/user/keys/query", auth=Auth.SERVER, prefixes=FEDERATION_V1)
async def query_user_encryption_keys(request: web.Request) -> web.Response:
    """POST /_matrix/federation/v1/user/keys/query"""
    body = await read_json_object(request)
    return json_response(await services_of(request).e2e_keys.query_for_server(origin_of(request), body))


@route("POST", "/user/keys/claim", auth=Auth.SERVER, prefixes=FEDERATION_V1)
async def claim_user_encryption_keys(request: web.Request) -> web.Response:
    """POST /_matrix/federation/v1/user/keys/claim"""
    body = await read_json_object(request)
    return json_response(await services_of(request).e2e_keys.claim_for_server(origin_of(request), body))
