"""Spec file: server-server/version.yaml."""

from importlib.metadata import PackageNotFoundError, version

from aiohttp import web

from homeserver.api.http import FEDERATION_V1, Auth, json_response, route

try:
    _VERSION = version("chatgo")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    _VERSION = "unknown"


@route("GET", "/version", auth=Auth.NONE, prefixes=FEDERATION_V1)
async def get_version(request: web.Request) -> web.Response:
    """GET /_matrix/federation/v1/version"""
    return json_response({"server": {"name": "ChatGO", "version": _VERSION}})
