"""Statistics, as Synapse's admin API serves them (docs: statistics.md)."""

from aiohttp import web

from homeserver.api.admin.params import choice_param, direction, offset_paging, page_body
from homeserver.api.http import SYNAPSE_ADMIN_V1, Auth, int_param, json_response, route, services_of


@route("GET", "/statistics/users/media", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def get_users_media_statistics(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/statistics/users/media

    Per local user, the files uploaded and their bytes. Offset paging; `order_by` (user_id,
    displayname, media_length, media_count), `dir`, `from_ts`/`until_ts` (upload times) and
    `search_term` (any part of the localpart or display name)."""
    start, limit = offset_paging(request)
    usage, total = await services_of(request).admin_media.usage_by_user(
        start, limit, order_by=choice_param(request, "order_by", ("user_id", "displayname", "media_length",
                                                                   "media_count"), "user_id"),
        backwards=direction(request) == "b", from_ts=int_param(request, "from_ts", 0),
        until_ts=int_param(request, "until_ts") if "until_ts" in request.query else None,
        search_term=request.query.get("search_term"))
    return json_response(page_body("users", [{"user_id": u.user_id, "displayname": u.displayname,
                                              "media_count": u.media_count, "media_length": u.media_length}
                                             for u in usage], start, limit, total))


@route("GET", "/statistics/database/rooms", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def get_largest_rooms(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/statistics/database/rooms

    The 10 rooms estimated to take the most database space (from PostgreSQL's statistics)."""
    rooms = await services_of(request).server_info.largest_rooms()
    return json_response({"rooms": [{"room_id": room_id, "estimated_size": size} for room_id, size in rooms]})
