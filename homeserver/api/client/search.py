"""Spec file: client-server/search.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, json_response, read_json_object, requester_of, route, services_of


@route("POST", "/search", auth=Auth.USER, rate_limited=True)
async def search(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/search"""
    body = await read_json_object(request)
    result = await services_of(request).search.search(requester_of(request), body, request.query.get("next_batch"))
    return json_response(result)
