"""Spec file: server-server/query.yaml."""

from aiohttp import web

from homeserver.api.http import FEDERATION_V1, Auth, json_response, route, services_of
from homeserver.errors import Codes, MatrixError, missing_param


def _required(request: web.Request, name: str) -> str:
    value = request.query.get(name)
    if not value:
        raise missing_param(f"'{name}' is required")
    return value


@route("GET", "/query/directory", auth=Auth.SERVER, prefixes=FEDERATION_V1)
async def query_room_directory(request: web.Request) -> web.Response:
    """GET /_matrix/federation/v1/query/directory"""
    alias = _required(request, "room_alias")
    return json_response(await services_of(request).directory.resolve_alias(alias, ask_remote=False))


@route("GET", "/query/profile", auth=Auth.SERVER, prefixes=FEDERATION_V1)
async def query_profile(request: web.Request) -> web.Response:
    """GET /_matrix/federation/v1/query/profile"""
    profiles = services_of(request).profiles
    user_id, field = _required(request, "user_id"), request.query.get("field")
    profile = await profiles.get_profile(user_id, ask_remote=False)  # 404 for an unknown user
    if field:
        # An existing user without that field: an empty answer, not 404 (as Synapse; peers ask
        # for each field before inviting and treat 404 as "no such user").
        return json_response({field: profile[field]} if field in profile else {})
    return json_response(profile)


@route("GET", "/query/{queryType}", auth=Auth.SERVER, prefixes=FEDERATION_V1,
       patterns={"queryType": "(?!directory$|profile$)[^/]+"})
async def query_info(request: web.Request) -> web.Response:
    """GET /_matrix/federation/v1/query/{queryType}

    The known query types have their own routes above; any other is answered 404, as Synapse
    does for a query type it has no handler for."""
    raise MatrixError(404, Codes.UNRECOGNIZED, f"Unknown query type {request.match_info['queryType']!r}")
