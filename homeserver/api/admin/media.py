"""Media, as Synapse's admin API serves it (docs: media_admin_api.md, and user_admin_api.md's
"List media uploaded by a user" / "Delete media uploaded by a user")."""

from typing import Any

from aiohttp import web

from homeserver.api.admin.params import bool_param, direction, offset_paging, page_body
from homeserver.api.http import SYNAPSE_ADMIN_V1, Auth, int_param, json_response, requester_of, route, services_of


def _user_media_json(media: Any) -> dict[str, Any]:
    """A LocalMedia as Synapse's user media object."""
    return {"media_id": media.media_id, "media_type": media.media_type, "media_length": media.media_length,
            "upload_name": media.upload_name, "created_ts": media.created_ts, "last_access_ts": media.last_access_ts,
            "quarantined_by": media.quarantined_by, "safe_from_quarantine": media.safe_from_quarantine}


def _user_media_order(request: web.Request) -> dict[str, Any]:
    """`order_by` and `dir` as given (absent: None, which lists the newest first)."""
    return {"order_by": request.query.get("order_by"),
            "backwards": direction(request) == "b" if "dir" in request.query else None}


def _deleted(deleted: list[str]) -> web.Response:
    return json_response({"deleted_media": deleted, "total": len(deleted)})


@route("GET", "/users/{userId}/media", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def list_user_media(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/users/{userId}/media

    Offset paging; `order_by` (media_id, upload_name, created_ts, last_access_ts, media_length,
    media_type, quarantined_by, safe_from_quarantine) and `dir`; neither: newest first."""
    start, limit = offset_paging(request)
    media, total = await services_of(request).admin_media.user_media(
        request.match_info["userId"], start, limit, **_user_media_order(request))
    return json_response(page_body("media", [_user_media_json(m) for m in media], start, limit, total))


@route("DELETE", "/users/{userId}/media", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def delete_user_media(request: web.Request) -> web.Response:
    """DELETE /_synapse/admin/v1/users/{userId}/media

    Deletes the page the same parameters would list (100 media by default, newest first)."""
    start, limit = offset_paging(request)
    return _deleted(await services_of(request).admin_media.delete_user_media(
        requester_of(request).user_id, request.match_info["userId"], start, limit, **_user_media_order(request)))


@route("GET", "/room/{roomId}/media", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def list_room_media(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/room/{roomId}/media"""
    local, remote = await services_of(request).admin_media.room_media(request.match_info["roomId"])
    return json_response({"local": local, "remote": remote})


@route("POST", "/media/quarantine/{serverName}/{mediaId}", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def quarantine_media(request: web.Request) -> web.Response:
    """POST /_synapse/admin/v1/media/quarantine/{serverName}/{mediaId}

    Quarantines the media and every media with the same content (protected media excepted)."""
    m = request.match_info
    await services_of(request).admin_media.quarantine_media(requester_of(request).user_id, m["serverName"],
                                                            m["mediaId"])
    return json_response({})


@route("POST", "/media/unquarantine/{serverName}/{mediaId}", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def unquarantine_media(request: web.Request) -> web.Response:
    """POST /_synapse/admin/v1/media/unquarantine/{serverName}/{mediaId}"""
    m = request.match_info
    await services_of(request).admin_media.unquarantine_media(requester_of(request).user_id, m["serverName"],
                                                              m["mediaId"])
    return json_response({})


@route("POST", "/room/{roomId}/media/quarantine", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def quarantine_room_media(request: web.Request) -> web.Response:
    """POST /_synapse/admin/v1/room/{roomId}/media/quarantine"""
    count = await services_of(request).admin_media.quarantine_room_media(requester_of(request).user_id,
                                                                         request.match_info["roomId"])
    return json_response({"num_quarantined": count})


@route("POST", "/user/{userId}/media/quarantine", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def quarantine_user_media(request: web.Request) -> web.Response:
    """POST /_synapse/admin/v1/user/{userId}/media/quarantine"""
    count = await services_of(request).admin_media.quarantine_user_media(requester_of(request).user_id,
                                                                         request.match_info["userId"])
    return json_response({"num_quarantined": count})


@route("POST", "/media/protect/{mediaId}", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def protect_media(request: web.Request) -> web.Response:
    """POST /_synapse/admin/v1/media/protect/{mediaId}"""
    await services_of(request).admin_media.protect_media(requester_of(request).user_id,
                                                         request.match_info["mediaId"], True)
    return json_response({})


@route("POST", "/media/unprotect/{mediaId}", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def unprotect_media(request: web.Request) -> web.Response:
    """POST /_synapse/admin/v1/media/unprotect/{mediaId}"""
    await services_of(request).admin_media.protect_media(requester_of(request).user_id,
                                                         request.match_info["mediaId"], False)
    return json_response({})


@route("GET", "/media/{serverName}/{mediaId}", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def get_media_info(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/media/{serverName}/{mediaId}"""
    m = request.match_info
    return json_response({"media_info": await services_of(request).admin_media.media_info(m["serverName"],
                                                                                          m["mediaId"])})


@route("DELETE", "/media/{serverName}/{mediaId}", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def delete_media(request: web.Request) -> web.Response:
    """DELETE /_synapse/admin/v1/media/{serverName}/{mediaId}"""
    m = request.match_info
    return _deleted(await services_of(request).admin_media.delete_media(requester_of(request).user_id,
                                                                        m["serverName"], m["mediaId"]))


@route("POST", "/media/delete", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def delete_media_by_date_size(request: web.Request) -> web.Response:
    """POST /_synapse/admin/v1/media/delete

    `before_ts` (required: last used before), `size_gt` (bytes, default 0), `keep_profiles`
    (default true: avatars are kept). Quarantined and protected media are kept."""
    return _deleted(await services_of(request).admin_media.delete_unused_local_media(
        requester_of(request).user_id, int_param(request, "before_ts"), int_param(request, "size_gt", 0),
        bool_param(request, "keep_profiles", True)))


@route("POST", "/purge_media_cache", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def purge_media_cache(request: web.Request) -> web.Response:
    """POST /_synapse/admin/v1/purge_media_cache

    Forgets cached remote media not used since `before_ts` (required); quarantined media stays."""
    count = await services_of(request).admin_media.purge_remote_media(requester_of(request).user_id,
                                                                      int_param(request, "before_ts"))
    return json_response({"deleted": count})
