"""Spec file: server-server/openid.yaml."""

from aiohttp import web

from homeserver.api.http import FEDERATION_V1, Auth, json_response, route, services_of


@route("GET", "/openid/userinfo", auth=Auth.NONE, prefixes=FEDERATION_V1)
async def exchange_open_id_token(request: web.Request) -> web.Response:
    """GET /_matrix/federation/v1/openid/userinfo"""
    # The third party is not a homeserver: no X-Matrix signature, the token is the credential.
    return json_response(await services_of(request).openid.user_info(request.query.get("access_token")))
