"""Spec file: server-server/keys_query.yaml."""

from aiohttp import web

from homeserver.api.http import KEY_V2, Auth, int_param, json_response, read_json_object, route, services_of


def _minimum(request: web.Request) -> int | None:
    """minimum_valid_until_ts when given (0 included); None when not (the notary's "now")."""
    if "minimum_valid_until_ts" not in request.query:
        return None
    return int_param(request, "minimum_valid_until_ts", minimum=0)


@route("GET", "/query/{serverName}", auth=Auth.NONE, prefixes=KEY_V2)
async def perspectives_key_query(request: web.Request) -> web.Response:
    """GET /_matrix/key/v2/query/{serverName}"""
    return json_response(await services_of(request).server_keys.query(
        request.match_info["serverName"], None, _minimum(request)))


@route("GET", "/query/{serverName}/{keyId}", auth=Auth.NONE, prefixes=KEY_V2, variant_of="/query/{serverName}")
async def perspectives_key_query_by_id(request: web.Request) -> web.Response:
    """GET /_matrix/key/v2/query/{serverName}/{keyId}

    The form with a key ID was dropped from the spec but older servers (and sytest) still ask
    it: the responses that hold that key.
    """
    return json_response(await services_of(request).server_keys.query(
        request.match_info["serverName"], request.match_info["keyId"], _minimum(request)))


@route("POST", "/query", auth=Auth.NONE, prefixes=KEY_V2)
async def bulk_perspectives_key_query(request: web.Request) -> web.Response:
    """POST /_matrix/key/v2/query"""
    return json_response(await services_of(request).server_keys.query_batch(await read_json_object(request)))
