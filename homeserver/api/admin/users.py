"""Accounts, as Synapse's admin API serves them (docs/admin_api/user_admin_api.md): list,
query, create or modify, deactivate, reset password, the admin flag, and what an admin reads
about an account."""

from aiohttp import web

from homeserver.api.http import (
    SYNAPSE_ADMIN_V1, SYNAPSE_ADMIN_V2, SYNAPSE_ADMIN_V3, Auth, bool_param, int_param, json_response,
    read_json_object, requester_of, route, services_of,
)
from homeserver.errors import Codes, MatrixError
from homeserver.services.admin.users import UserListQuery


def _list_query(request: web.Request, *, v3: bool) -> UserListQuery:
    """The listing's parameters. v2 shows deactivated accounts only with `deactivated=true`
    (and then with the others); v3 reads `deactivated` as a filter either way."""
    deactivated = bool_param(request, "deactivated", None)
    direction = request.query.get("dir", "f")
    if direction not in ("f", "b"):
        raise MatrixError(400, Codes.INVALID_PARAM, "'dir' must be 'f' or 'b'")
    return UserListQuery(
        offset=int_param(request, "from", 0), limit=int_param(request, "limit", 100),
        user_id=request.query.get("user_id"), name=request.query.get("name"),
        guests=bool_param(request, "guests", True),
        deactivated=deactivated if v3 else (None if deactivated else False),
        admins=bool_param(request, "admins", None), include_locked=bool_param(request, "locked", False),
        not_user_types=tuple(request.query.getall("not_user_type", [])),
        order_by=request.query.get("order_by", "name"), descending=direction == "b")


@route("GET", "/users", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V2)
async def list_users(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v2/users"""
    return json_response(await services_of(request).admin_users.list_users(_list_query(request, v3=False)))


@route("GET", "/users", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V3)
async def list_users_v3(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v3/users"""
    return json_response(await services_of(request).admin_users.list_users(_list_query(request, v3=True)))


@route("GET", "/users/{userId}", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V2)
async def get_user(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v2/users/{userId}"""
    return json_response(await services_of(request).admin_users.get_user(request.match_info["userId"]))


@route("PUT", "/users/{userId}", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V2)
async def put_user(request: web.Request) -> web.Response:
    """PUT /_synapse/admin/v2/users/{userId}

    201 with the new account, 200 with the changed one."""
    created, user = await services_of(request).admin_users.put_user(
        requester_of(request), request.match_info["userId"], await read_json_object(request))
    return json_response(user, status=201 if created else 200)


@route("POST", "/deactivate/{userId}", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def deactivate_user(request: web.Request) -> web.Response:
    """POST /_synapse/admin/v1/deactivate/{userId}"""
    return json_response(await services_of(request).admin_users.deactivate(
        requester_of(request), request.match_info["userId"], await read_json_object(request, allow_empty=True)))


@route("POST", "/reset_password/{userId}", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def reset_password(request: web.Request) -> web.Response:
    """POST /_synapse/admin/v1/reset_password/{userId}"""
    await services_of(request).admin_users.reset_password(
        requester_of(request), request.match_info["userId"], await read_json_object(request))
    return json_response({})


@route("GET", "/users/{userId}/admin", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def get_user_admin(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/users/{userId}/admin"""
    return json_response({"admin": await services_of(request).admin_users.is_admin(request.match_info["userId"])})


@route("PUT", "/users/{userId}/admin", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def set_user_admin(request: web.Request) -> web.Response:
    """PUT /_synapse/admin/v1/users/{userId}/admin"""
    await services_of(request).admin_users.set_admin(
        requester_of(request), request.match_info["userId"], await read_json_object(request))
    return json_response({})


@route("GET", "/whois/{userId}", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def whois(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/whois/{userId}"""
    return json_response(await services_of(request).admin_users.whois(requester_of(request),
                                                                     request.match_info["userId"]))


@route("GET", "/users/{userId}/joined_rooms", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def list_joined_rooms(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/users/{userId}/joined_rooms"""
    return json_response(await services_of(request).admin_users.joined_rooms(request.match_info["userId"]))


@route("GET", "/users/{userId}/memberships", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def list_memberships(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/users/{userId}/memberships"""
    return json_response(await services_of(request).admin_users.memberships(request.match_info["userId"]))


@route("GET", "/users/{userId}/sent_invite_count", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def sent_invite_count(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/users/{userId}/sent_invite_count"""
    return json_response(await services_of(request).admin_users.sent_invite_count(
        request.match_info["userId"], int_param(request, "from_ts")))


@route("GET", "/users/{userId}/cumulative_joined_room_count", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def cumulative_joined_room_count(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/users/{userId}/cumulative_joined_room_count"""
    return json_response(await services_of(request).admin_users.cumulative_joined_room_count(
        request.match_info["userId"], int_param(request, "from_ts")))


@route("GET", "/users/{userId}/accountdata", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def get_account_data(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/users/{userId}/accountdata"""
    return json_response(await services_of(request).admin_users.account_data(request.match_info["userId"]))


@route("GET", "/users/{userId}/pushers", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def list_pushers(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/users/{userId}/pushers"""
    return json_response(await services_of(request).admin_users.pushers(request.match_info["userId"]))


@route("GET", "/username_available", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def username_available(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/username_available"""
    return json_response(await services_of(request).admin_users.username_available(request.query.get("username")))


@route("GET", "/auth_providers/{provider}/users/{externalId}", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def user_by_external_id(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/auth_providers/{provider}/users/{externalId}"""
    return json_response(await services_of(request).admin_users.user_by_external_id(
        request.match_info["provider"], request.match_info["externalId"]))


@route("GET", "/threepid/{medium}/users/{address}", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def user_by_threepid(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/threepid/{medium}/users/{address}"""
    return json_response(await services_of(request).admin_users.user_by_threepid(
        request.match_info["medium"], request.match_info["address"]))
