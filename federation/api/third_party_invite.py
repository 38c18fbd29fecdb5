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


@route("PUT", "/exchange_third_party_invite/{roomId}", auth=Auth.SERVER, prefixes=FEDERATION_V1)
async def exchange_third_party_invite(request: web.Request) -> web.Response:
    """PUT /_matrix/federation/v1/exchange_third_party_invite/{roomId}

    From the invitee's server, which got the identity server's signed invite (/3pid/onbind)
    but is not in the room: the invite is checked and issued here.
    """
    await services_of(request).third_party_invites.on_exchange(request.match_info["roomId"],
                                                               await read_json_object(request))
    return json_response({})
