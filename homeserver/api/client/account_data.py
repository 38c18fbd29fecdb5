"""Spec file: client-server/account-data.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, json_response, read_json_object, requester_of, route, services_of


@route("PUT", "/user/{userId}/account_data/{type}", auth=Auth.USER)
async def set_account_data(request: web.Request) -> web.Response:
    """PUT /_matrix/client/v3/user/{userId}/account_data/{type}"""
    m = request.match_info
    body = await read_json_object(request)
    await services_of(request).account_data.set_for_client(requester_of(request), m["userId"], None, m["type"], body)
    return json_response({})


@route("GET", "/user/{userId}/account_data/{type}", auth=Auth.USER)
async def get_account_data(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/user/{userId}/account_data/{type}"""
    m = request.match_info
    return json_response(
        await services_of(request).account_data.get_for_client(requester_of(request), m["userId"], None, m["type"])
    )


@route("PUT", "/user/{userId}/rooms/{roomId}/account_data/{type}", auth=Auth.USER)
async def set_account_data_per_room(request: web.Request) -> web.Response:
    """PUT /_matrix/client/v3/user/{userId}/rooms/{roomId}/account_data/{type}"""
    m = request.match_info
    body = await read_json_object(request)
    await services_of(request).account_data.set_for_client(
        requester_of(request), m["userId"], m["roomId"], m["type"], body
    )
    return json_response({})


@route("GET", "/user/{userId}/rooms/{roomId}/account_data/{type}", auth=Auth.USER)
async def get_account_data_per_room(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/user/{userId}/rooms/{roomId}/account_data/{type}"""
    m = request.match_info
    return json_response(
        await services_of(request).account_data.get_for_client(requester_of(request), m["userId"], m["roomId"], m["type"])
    )
