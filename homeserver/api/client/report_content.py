"""Spec file: client-server/report_content.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, json_response, read_json_object, requester_of, route, services_of


@route("POST", "/rooms/{roomId}/report/{eventId}", auth=Auth.USER)
async def report_event(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/rooms/{roomId}/report/{eventId}"""
    m = request.match_info
    await services_of(request).reports.report_event(requester_of(request), m["roomId"], m["eventId"],
                                                    await read_json_object(request))
    return json_response({})


@route("POST", "/rooms/{roomId}/report", auth=Auth.USER)
async def report_room(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/rooms/{roomId}/report"""
    await services_of(request).reports.report_room(requester_of(request), request.match_info["roomId"],
                                                   await read_json_object(request))
    return json_response({})


@route("POST", "/users/{userId}/report", auth=Auth.USER)
async def report_user(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/users/{userId}/report"""
    await services_of(request).reports.report_user(requester_of(request), request.match_info["userId"],
                                                   await read_json_object(request))
    return json_response({})
