"""Spec file: client-server/users.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, json_response, read_json_object, requester_of, route, services_of


@route("POST", "/user_directory/search", auth=Auth.USER, rate_limited=True)
async def search_user_directory(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/user_directory/search"""
    body = await read_json_object(request)
    return json_response(await services_of(request).search.search_users(requester_of(request), body))
