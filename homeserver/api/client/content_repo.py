"""Spec file: client-server/content-repo.yaml — the /_matrix/media endpoints: uploads, and the
deprecated unauthenticated downloads, thumbnails, previews and config."""

from aiohttp import web

from homeserver.api.http import Auth, int_param, json_response, requester_of, route, services_of
from homeserver.api.media_responses import (
    bool_param, content_response, optional_int_param, str_param, thumbnail_response, timeout_ms_param,
    upload_body,
)

MEDIA = ("/_matrix",)  # the spec's paths here start with /media/v3 or /media/v1


@route("POST", "/media/v3/upload", prefixes=MEDIA)
async def upload_content(request: web.Request) -> web.Response:
    """POST /_matrix/media/v3/upload"""
    content_uri = await services_of(request).media.upload(
        requester_of(request), upload_body(request), content_type=request.headers.get("Content-Type"),
        filename=request.query.get("filename"), declared_length=request.content_length,
    )
    return json_response({"content_uri": content_uri})


@route("PUT", "/media/v3/upload/{serverName}/{mediaId}", prefixes=MEDIA)
async def upload_content_to_mxc(request: web.Request) -> web.Response:
    """PUT /_matrix/media/v3/upload/{serverName}/{mediaId}"""
    m = request.match_info
    await services_of(request).media.upload_to(
        requester_of(request), m["serverName"], m["mediaId"], upload_body(request),
        content_type=request.headers.get("Content-Type"), filename=request.query.get("filename"),
        declared_length=request.content_length,
    )
    return json_response({})


@route("POST", "/media/v1/create", prefixes=MEDIA, rate_limited=True)
async def create_content(request: web.Request) -> web.Response:
    """POST /_matrix/media/v1/create"""
    content_uri, expires_at = await services_of(request).media.create(requester_of(request))
    return json_response({"content_uri": content_uri, "unused_expires_at": expires_at})


@route("GET", "/media/v3/download/{serverName}/{mediaId}", auth=Auth.NONE, prefixes=MEDIA)
async def get_content(request: web.Request) -> web.StreamResponse:
    """GET /_matrix/media/v3/download/{serverName}/{mediaId}"""
    m = request.match_info
    content = await services_of(request).media.get_content(
        m["serverName"], m["mediaId"], timeout_ms=timeout_ms_param(request), legacy=True,
        allow_remote=bool_param(request, "allow_remote", default=True))
    return content_response(content, authenticated=False)


@route("GET", "/media/v3/download/{serverName}/{mediaId}/{fileName}", auth=Auth.NONE, prefixes=MEDIA)
async def get_content_override_name(request: web.Request) -> web.StreamResponse:
    """GET /_matrix/media/v3/download/{serverName}/{mediaId}/{fileName}"""
    m = request.match_info
    content = await services_of(request).media.get_content(
        m["serverName"], m["mediaId"], timeout_ms=timeout_ms_param(request), legacy=True,
        allow_remote=bool_param(request, "allow_remote", default=True))
    return content_response(content, file_name=m["fileName"], authenticated=False)


@route("GET", "/media/v3/thumbnail/{serverName}/{mediaId}", auth=Auth.NONE, prefixes=MEDIA)
async def get_content_thumbnail(request: web.Request) -> web.StreamResponse:
    """GET /_matrix/media/v3/thumbnail/{serverName}/{mediaId}"""
    m = request.match_info
    thumbnail = await services_of(request).thumbnails.thumbnail(
        m["serverName"], m["mediaId"], width=int_param(request, "width"), height=int_param(request, "height"),
        method=request.query.get("method", "scale"), animated=bool_param(request, "animated"),
        timeout_ms=timeout_ms_param(request), legacy=True,
        allow_remote=bool_param(request, "allow_remote", default=True),
    )
    return thumbnail_response(thumbnail, authenticated=False)


@route("GET", "/media/v3/preview_url", prefixes=MEDIA)
async def get_url_preview(request: web.Request) -> web.Response:
    """GET /_matrix/media/v3/preview_url"""
    og = await services_of(request).url_previews.preview(
        requester_of(request), str_param(request, "url"), optional_int_param(request, "ts"))
    return json_response(og)


@route("GET", "/media/v3/config", prefixes=MEDIA)
async def get_config(request: web.Request) -> web.Response:
    """GET /_matrix/media/v3/config"""
    return json_response(services_of(request).media.upload_config())



def _legacy_alias(handler, version: str):
    """`handler` also under /_matrix/media/{version}: Synapse still serves r0, and clients
    written before v3 use it."""
    info = handler.route_info
    path = info.path.replace("/media/v3/", f"/media/{version}/", 1)

    async def alias(request: web.Request) -> web.StreamResponse:
        return await handler(request)

    alias.__name__ = f"{handler.__name__}_{version}"
    alias.__doc__ = f"{info.method} /_matrix{path}\n\nThe same as {info.method} /_matrix{info.path}."
    return route(info.method, path, auth=info.auth, prefixes=MEDIA, variant_of=info.path)(alias)


upload_content_r0 = _legacy_alias(upload_content, "r0")
get_content_r0 = _legacy_alias(get_content, "r0")
get_content_override_name_r0 = _legacy_alias(get_content_override_name, "r0")
get_content_thumbnail_r0 = _legacy_alias(get_content_thumbnail, "r0")
get_url_preview_r0 = _legacy_alias(get_url_preview, "r0")
get_config_r0 = _legacy_alias(get_config, "r0")
