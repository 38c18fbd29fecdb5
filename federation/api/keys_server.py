"""Spec file: server-server/keys_server.yaml."""

from aiohttp import web

from homeserver.api.http import KEY_V2, Auth, json_response, route, services_of


@route("GET", "/server", auth=Auth.NONE, prefixes=KEY_V2)
async def get_server_key(request: web.Request) -> web.Response:
    """GET /_matrix/key/v2/server"""
    return json_response(services_of(request).server_keys.own_keys())


@route("GET", "/server/{keyId}", auth=Auth.NONE, prefixes=KEY_V2, variant_of="/server")
async def get_server_key_by_id(request: web.Request) -> web.Response:
    """GET /_matrix/key/v2/server/{keyId}

    The form with a key ID was deprecated in r0.1.4 but older servers (and sytest's) still ask
    it; the key ID is ignored and every current key is returned, as Synapse does.
    """
    return json_response(services_of(request).server_keys.own_keys())
