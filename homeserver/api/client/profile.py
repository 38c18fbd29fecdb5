"""Spec file: client-server/profile.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, json_response, read_json_object, requester_of, route, services_of


@route("GET", "/profile/{userId}", auth=Auth.OPTIONAL, guest=True)
async def get_user_profile(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/profile/{userId}"""
    return json_response(await services_of(request).profiles.get_profile(request.match_info["userId"]))


@route("GET", "/profile/{userId}/{keyName}", auth=Auth.OPTIONAL, guest=True)
async def get_profile_field(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/profile/{userId}/{keyName}"""
    m = request.match_info
    return json_response(await services_of(request).profiles.get_field(m["userId"], m["keyName"]))


@route("PUT", "/profile/{userId}/{keyName}", auth=Auth.USER, guest=True, rate_limited=True)
async def set_profile_field(request: web.Request) -> web.Response:
    """PUT /_matrix/client/v3/profile/{userId}/{keyName}"""
    body = await read_json_object(request)
    m = request.match_info
    await services_of(request).profiles.set_field(requester_of(request), m["userId"], m["keyName"], body)
    return json_response({})


@route("DELETE", "/profile/{userId}/{keyName}", auth=Auth.USER, guest=True, rate_limited=True)
async def delete_profile_field(request: web.Request) -> web.Response:
    """DELETE /_matrix/client/v3/profile/{userId}/{keyName}"""
    m = request.match_info
    await services_of(request).profiles.delete_field(requester_of(request), m["userId"], m["keyName"])
    return json_response({})
