"""Account validity, as Synapse's admin API serves it (docs/admin_api/account_validity.md)."""

from aiohttp import web

from homeserver.api.http import (
    SYNAPSE_ADMIN_V1, Auth, json_response, read_json_object, requester_of, route, services_of,
)


@route("POST", "/account_validity/validity", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def renew_account(request: web.Request) -> web.Response:
    """POST /_synapse/admin/v1/account_validity/validity"""
    return json_response(await services_of(request).admin_user_moderation.renew_account(
        requester_of(request), await read_json_object(request)))
