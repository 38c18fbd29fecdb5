"""Spec file: server-server/keys_query.yaml."""

from aiohttp import web

from homeserver.api.http import KEY_V2, Auth, int_param, json_response, read_json_object, route, services_of


@route("GET", "/query/{serverName}", auth=Auth.NONE, prefixes=KEY_V2)
async def perspectives_key_query(request: web.Request) -> web.Response:
    """GET /_matrix/key/v2/query/{serverName}"""
    minimum = int_param(request, "minimum_valid_until_ts", 0, minimum=0) or None
    return json_response(await services_of(request).server_keys.query(request.match_info["serverName"], minimum))


@route("POST", "/query", auth=Auth.NONE, prefixes=KEY_V2)
async def bulk_perspectives_key_query(request: web.Request) -> web.Response:
    """POST /_matrix/key/v2/query"""
    return json_response(await services_of(request).server_keys.query_batch(await read_json_object(request)))
