"""Registration tokens, as Synapse's admin API serves them (docs: registration_tokens.md)."""

from typing import Any

from aiohttp import web

from homeserver.api.admin.params import bool_param
from homeserver.api.http import SYNAPSE_ADMIN_V1, Auth, json_response, read_json_object, requester_of, route, \
    services_of


def _token_json(row: Any) -> dict[str, Any]:
    """A RegistrationTokenRow as Synapse's registration token object."""
    return {"token": row.token, "uses_allowed": row.uses_allowed, "pending": row.pending,
            "completed": row.completed, "expiry_time": row.expiry_ts}


@route("GET", "/registration_tokens", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def list_registration_tokens(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/registration_tokens

    `valid=true`: only tokens still usable; `valid=false`: only expired or used-up ones."""
    rows = await services_of(request).registration_tokens.list(bool_param(request, "valid"))
    return json_response({"registration_tokens": [_token_json(row) for row in rows]})


@route("POST", "/registration_tokens/new", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def create_registration_token(request: web.Request) -> web.Response:
    """POST /_synapse/admin/v1/registration_tokens/new

    Body: `token` (else `length` random characters, default 16), `uses_allowed`, `expiry_time`."""
    body = await read_json_object(request)
    row = await services_of(request).registration_tokens.create(
        body.get("token"), uses_allowed=body.get("uses_allowed"), expiry_ts=body.get("expiry_time"),
        length=body.get("length", 16), admin_id=requester_of(request).user_id)
    return json_response(_token_json(row))


@route("GET", "/registration_tokens/{token}", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def get_registration_token(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/registration_tokens/{token}"""
    row = await services_of(request).registration_tokens.get(request.match_info["token"])
    return json_response(_token_json(row))


@route("PUT", "/registration_tokens/{token}", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def update_registration_token(request: web.Request) -> web.Response:
    """PUT /_synapse/admin/v1/registration_tokens/{token}

    Changes `uses_allowed` and/or `expiry_time` (null: unlimited, never); others are kept."""
    body = await read_json_object(request)
    changes = {name: body[key] for key, name in (("uses_allowed", "uses_allowed"), ("expiry_time", "expiry_ts"))
               if key in body}
    row = await services_of(request).registration_tokens.update(request.match_info["token"], **changes,
                                                                admin_id=requester_of(request).user_id)
    return json_response(_token_json(row))


@route("DELETE", "/registration_tokens/{token}", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def delete_registration_token(request: web.Request) -> web.Response:
    """DELETE /_synapse/admin/v1/registration_tokens/{token}"""
    await services_of(request).registration_tokens.delete(request.match_info["token"],
                                                          admin_id=requester_of(request).user_id)
    return json_response({})
