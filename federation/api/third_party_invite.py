"""Spec file: server-server/third_party_invite.yaml."""

from aiohttp import web

from homeserver.api.http import FEDERATION_V1, Auth, json_response, read_json_object, route, services_of


@route("PUT", "/3pid/onbind", auth=Auth.NONE, prefixes=FEDERATION_V1)
async def on_bind_third_party_identifier(request: web.Request) -> web.Response:
    """PUT /_matrix/federation/v1/3pid/onbind

    Called by identity servers, which sign the invites it carries (the auth rules check them).
    """
    await services_of(request).third_party_invites.on_bind(await read_json_object(request))
    return json_response({})
