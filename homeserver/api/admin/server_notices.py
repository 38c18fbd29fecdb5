"""Server notices, as Synapse's admin API serves them (docs: server_notices.md)."""

from aiohttp import web

from homeserver.api.http import SYNAPSE_ADMIN_V1, Auth, json_response, read_json_object, requester_of, route, \
    services_of


@route("POST", "/send_server_notice", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def send_server_notice(request: web.Request) -> web.Response:
    """POST /_synapse/admin/v1/send_server_notice

    Body: `user_id` (local), `content`, optional `type` (default m.room.message) and
    `state_key`. 400 when server notices are not configured (`server_notices` section)."""
    event_id = await services_of(request).server_notices.send_notice(requester_of(request),
                                                                     await read_json_object(request))
    return json_response({"event_id": event_id})


@route("PUT", "/send_server_notice/{txnId}", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def send_server_notice_with_txn(request: web.Request) -> web.Response:
    """PUT /_synapse/admin/v1/send_server_notice/{txnId}

    As POST; a retry with the same transaction ID (same admin device) sends nothing new."""
    event_id = await services_of(request).server_notices.send_notice(
        requester_of(request), await read_json_object(request), request.match_info["txnId"])
    return json_response({"event_id": event_id})
