"""Spec file: client-server/appservice_ping.yaml."""

from aiohttp import web

from homeserver.api.http import CLIENT_V1, Auth, json_response, read_json_object, requester_of, route, services_of


@route("POST", "/appservice/{appserviceId}/ping", auth=Auth.USER, prefixes=CLIENT_V1)
async def ping_appservice(request: web.Request) -> web.Response:
    """POST /_matrix/client/v1/appservice/{appserviceId}/ping"""
    body = await read_json_object(request, allow_empty=True)
    return json_response(await services_of(request).appservice_sender.ping(
        requester_of(request), request.match_info["appserviceId"], body))
