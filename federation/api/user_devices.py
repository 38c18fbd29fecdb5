"""Spec file: server-server/user_devices.yaml — a local user's device list, for peers."""

from aiohttp import web

from homeserver.api.http import FEDERATION_V1, Auth, json_response, route, services_of


@route("GET", "/user/devices/{userId}", auth=Auth.SERVER, prefixes=FEDERATION_V1)
async def get_user_devices(request: web.Request) -> web.Response:
    """GET /_matrix/federation/v1/user/devices/{userId}"""
    return json_response(await services_of(request).e2e_keys.devices_for_server(request.match_info["userId"]))
