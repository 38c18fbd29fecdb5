"""Spec file: client-server/openid.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, json_response, read_json_object, requester_of, route, services_of


@route("POST", "/user/{userId}/openid/request_token", auth=Auth.USER)
async def request_open_id_token(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/user/{userId}/openid/request_token"""
    await read_json_object(request)  # an empty object, reserved for future use
    return json_response(await services_of(request).openid.request_token(
        requester_of(request), request.match_info["userId"]))
