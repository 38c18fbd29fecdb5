"""Spec file: client-server/authed-content-repo.yaml — /_matrix/client/v1/media: downloads,
thumbnails, previews and config, for authenticated users."""

from aiohttp import web

from homeserver.api.http import CLIENT_V1, Auth, int_param, json_response, requester_of, route, services_of
from homeserver.api.media_responses import (
    bool_param, content_response, optional_int_param, str_param, thumbnail_response, timeout_ms_param,
)


@route("GET", "/media/download/{serverName}/{mediaId}", auth=Auth.USER, prefixes=CLIENT_V1, guest=True)
async def get_content_authed(request: web.Request) -> web.StreamResponse:
    """GET /_matrix/client/v1/media/download/{serverName}/{mediaId}"""
    m = request.match_info
    content = await services_of(request).media.get_content(
        m["serverName"], m["mediaId"], timeout_ms=timeout_ms_param(request), legacy=False)
    return content_response(content, authenticated=True)


@route("GET", "/media/download/{serverName}/{mediaId}/{fileName}", auth=Auth.USER, prefixes=CLIENT_V1, guest=True)
async def get_content_override_name_authed(request: web.Request) -> web.StreamResponse:
    """GET /_matrix/client/v1/media/download/{serverName}/{mediaId}/{fileName}"""
    m = request.match_info
    content = await services_of(request).media.get_content(
        m["serverName"], m["mediaId"], timeout_ms=timeout_ms_param(request), legacy=False)
    return content_response(content, file_name=m["fileName"], authenticated=True)


@route("GET", "/media/thumbnail/{serverName}/{mediaId}", auth=Auth.USER, prefixes=CLIENT_V1, guest=True)
async def get_content_thumbnail_authed(request: web.Request) -> web.StreamResponse:
    """GET /_matrix/client/v1/media/thumbnail/{serverName}/{mediaId}"""
    m = request.match_info
    thumbnail = await services_of(request).thumbnails.thumbnail(
        m["serverName"], m["mediaId"], width=int_param(request, "width"), height=int_param(request, "height"),
        method=request.query.get("method", "scale"), animated=bool_param(request, "animated"),
        timeout_ms=timeout_ms_param(request), legacy=False,
    )
    return thumbnail_response(thumbnail, authenticated=True)


@route("GET", "/media/preview_url", auth=Auth.USER, prefixes=CLIENT_V1)
async def get_url_preview_authed(request: web.Request) -> web.Response:
    """GET /_matrix/client/v1/media/preview_url"""
    og = await services_of(request).url_previews.preview(
        requester_of(request), str_param(request, "url"), optional_int_param(request, "ts"))
    return json_response(og)


@route("GET", "/media/config", auth=Auth.USER, prefixes=CLIENT_V1)
async def get_config_authed(request: web.Request) -> web.Response:
    """GET /_matrix/client/v1/media/config"""
    return json_response(services_of(request).media.upload_config())
