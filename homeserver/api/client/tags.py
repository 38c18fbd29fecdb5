"""Spec file: client-server/tags.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, json_response, read_json_object, requester_of, route, services_of


@route("GET", "/user/{userId}/rooms/{roomId}/tags", auth=Auth.USER)
async def get_room_tags(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags"""
    m = request.match_info
    return json_response(await services_of(request).account_data.tags(requester_of(request), m["userId"], m["roomId"]))


@route("PUT", "/user/{userId}/rooms/{roomId}/tags/{tag}", auth=Auth.USER)
async def set_room_tag(request: web.Request) -> web.Response:
    """PUT /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags/{tag}"""
    m = request.match_info
    body = await read_json_object(request)
    await services_of(request).account_data.set_tag(requester_of(request), m["userId"], m["roomId"], m["tag"], body)
    return json_response({})


@route("DELETE", "/user/{userId}/rooms/{roomId}/tags/{tag}", auth=Auth.USER)
async def delete_room_tag(request: web.Request) -> web.Response:
    """DELETE /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags/{tag}"""
    m = request.match_info
    await services_of(request).account_data.delete_tag(requester_of(request), m["userId"], m["roomId"], m["tag"])
    return json_response({})
