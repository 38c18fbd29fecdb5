"""Spec file: client-server/inviting.yaml."""

from aiohttp import web

from homeserver.api.client.membership_common import reason_of, target_of
from homeserver.api.http import Auth, json_response, read_json_object, requester_of, route, services_of


@route("POST", "/rooms/{roomId}/invite", auth=Auth.USER, rate_limited=True)
async def invite_user(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/rooms/{roomId}/invite

    Also the third-party form (third_party_membership.yaml): `id_server`, `medium`, `address`.
    """
    body = await read_json_object(request)
    if "medium" in body or "address" in body or "id_server" in body:
        await services_of(request).third_party_invites.invite(requester_of(request), request.match_info["roomId"], body)
        return json_response({})
    await services_of(request).membership.invite(
        requester_of(request).user_id, request.match_info["roomId"], target_of(body), reason_of(body)
    )
    return json_response({})
