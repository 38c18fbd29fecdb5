"""Spec file: client-server/pusher.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, json_response, read_json_object, requester_of, route, services_of


@route("GET", "/pushers", auth=Auth.USER)
async def get_pushers(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/pushers"""
    return json_response({"pushers": await services_of(request).pushers.get_pushers(requester_of(request).user_id)})


@route("POST", "/pushers/set", auth=Auth.USER, rate_limited=True)
async def post_pusher(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/pushers/set"""
    body = await read_json_object(request)
    await services_of(request).pushers.set_pusher(requester_of(request), body)
    return json_response({})
