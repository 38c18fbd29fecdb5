"""POST /_matrix/federation/v1/3pid/onbind: the spec's PUT as identity servers (sydent, sytest's
helper) and Synapse use it, with POST. No OpenAPI file has this method: a feature module."""

from aiohttp import web

from homeserver.api.http import FEDERATION_V1, Auth, json_response, read_json_object, route, services_of


@route("POST", "/3pid/onbind", auth=Auth.NONE, prefixes=FEDERATION_V1)
async def on_bind_third_party_identifier_post(request: web.Request) -> web.Response:
    """POST /_matrix/federation/v1/3pid/onbind"""
    await services_of(request).third_party_invites.on_bind(await read_json_object(request))
    return json_response({})
