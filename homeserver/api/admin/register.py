"""Shared-secret registration, as Synapse's admin API serves it."""

from aiohttp import web

from homeserver.api.client.registration import login_response
from homeserver.api.http import SYNAPSE_ADMIN_V1, Auth, json_response, read_json_object, route, services_of


@route("GET", "/register", auth=Auth.NONE, prefixes=SYNAPSE_ADMIN_V1)
async def get_registration_nonce(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/register"""
    return json_response({"nonce": await services_of(request).shared_secret_registration.new_nonce()})


@route("POST", "/register", auth=Auth.NONE, prefixes=SYNAPSE_ADMIN_V1)
async def register_with_shared_secret(request: web.Request) -> web.Response:
    """POST /_synapse/admin/v1/register"""
    result = await services_of(request).shared_secret_registration.register(await read_json_object(request))
    return json_response(login_response(result))
