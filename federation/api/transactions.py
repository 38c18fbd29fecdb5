"""Spec file: server-server/transactions.yaml."""

from aiohttp import web

from homeserver.api.http import FEDERATION_V1, Auth, json_response, origin_of, read_json_object, route, services_of


# Not through the per-origin gate, as Synapse: a peer sends one transaction at a time, and
# holding it back only delays everything it carries.
@route("PUT", "/send/{txnId}", auth=Auth.SERVER, prefixes=FEDERATION_V1, rate_limited=False)
async def send_transaction(request: web.Request) -> web.Response:
    """PUT /_matrix/federation/v1/send/{txnId}"""
    body = await read_json_object(request)
    result = await services_of(request).federation_transactions.on_send(
        origin_of(request), request.match_info["txnId"], body)
    return json_response(result)
