"""Spec file: client-server/third_party_lookup.yaml."""

from aiohttp import web

from homeserver.api.http import json_response, route, services_of


def _fields(request: web.Request) -> list[tuple[str, str]]:
    """The query's fields for the appservices (the access token is ours, not theirs)."""
    return [(k, v) for k, v in request.query.items() if k != "access_token"]


@route("GET", "/thirdparty/protocols", guest=True)
async def get_protocols(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/thirdparty/protocols"""
    return json_response(await services_of(request).third_party_lookups.protocols())


@route("GET", "/thirdparty/protocol/{protocol}", guest=True)
async def get_protocol_metadata(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/thirdparty/protocol/{protocol}"""
    return json_response(await services_of(request).third_party_lookups.protocol(request.match_info["protocol"]))


@route("GET", "/thirdparty/location/{protocol}", guest=True)
async def query_location_by_protocol(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/thirdparty/location/{protocol}"""
    return json_response(await services_of(request).third_party_lookups.locations(
        request.match_info["protocol"], _fields(request)))


@route("GET", "/thirdparty/user/{protocol}", guest=True)
async def query_user_by_protocol(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/thirdparty/user/{protocol}"""
    return json_response(await services_of(request).third_party_lookups.users(
        request.match_info["protocol"], _fields(request)))


@route("GET", "/thirdparty/location", guest=True)
async def query_location_by_alias(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/thirdparty/location"""
    return json_response(await services_of(request).third_party_lookups.locations_for_alias(
        request.query.get("alias")))


@route("GET", "/thirdparty/user", guest=True)
async def query_user_by_id(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/thirdparty/user"""
    return json_response(await services_of(request).third_party_lookups.users_for_id(request.query.get("userid")))
