"""Spec file: client-server/filter.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, json_response, read_json_object, requester_of, route, services_of


@route("POST", "/user/{userId}/filter", auth=Auth.USER, guest=True)
async def define_filter(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/user/{userId}/filter"""
    body = await read_json_object(request)
    filter_id = await services_of(request).filters.define(requester_of(request), request.match_info["userId"], body)
    return json_response({"filter_id": filter_id})


@route("GET", "/user/{userId}/filter/{filterId}", auth=Auth.USER, guest=True)
async def get_filter(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/user/{userId}/filter/{filterId}"""
    m = request.match_info
    return json_response(await services_of(request).filters.get(requester_of(request), m["userId"], m["filterId"]))
