"""Spec file: client-server/capabilities.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, json_response, requester_of, route, services_of
from homeserver.core.room_versions import DEFAULT_ROOM_VERSION, KNOWN_ROOM_VERSIONS


@route("GET", "/capabilities", auth=Auth.USER)
async def get_capabilities(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/capabilities"""
    capabilities = {
        "m.change_password": {"enabled": True},
        "m.room_versions": {
            "default": DEFAULT_ROOM_VERSION,
            "available": {
                version.identifier: "stable" if version.stable else "unstable"
                for version in KNOWN_ROOM_VERSIONS.values()
            },
        },
        "m.set_displayname": {"enabled": True},
        "m.set_avatar_url": {"enabled": True},
        "m.3pid_changes": {"enabled": False},
        "m.get_login_token": {"enabled": services_of(request).login_tokens.get_token_enabled},
        "org.matrix.msc4140.delayed_events": services_of(request).delayed_events.capability(),
    }
    if requester_of(request).is_admin:  # PUT /_matrix/client/v1/admin/suspend|lock/{userId}
        capabilities["m.account_moderation"] = {"suspend": True, "lock": True}
    return json_response({"capabilities": capabilities})
