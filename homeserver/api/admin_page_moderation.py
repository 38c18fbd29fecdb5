"""The admin page's moderation screens (see homeserver/api/admin_page.py for the page itself,
its session and CSRF rules): rooms (delete, block), media quarantine, reports, federation
destinations and their back-off. Each change goes through the service the admin API uses,
which records it in the audit log under the admin's user ID."""

from __future__ import annotations

from aiohttp import web

from homeserver.api.admin_page import (
    P, PAGE, PAGE_SIZE, admin_of, admin_only, done, form_str, pager, render,
)
from homeserver.api.http import Auth, int_param, route, services_of
from homeserver.api.pages import path_segment
from homeserver.errors import Codes, MatrixError

REPORT_KINDS = ("event", "room", "user")
REPORTS_SHOWN = 100


# --- rooms ----------------------------------------------------------------------------------

@route("GET", "/rooms", auth=Auth.NONE, prefixes=PAGE)
@admin_only
async def admin_page_rooms(request: web.Request) -> web.Response:
    """GET /_chatgo/admin/rooms

    `q`: room IDs, names or aliases containing it; `from`: the offset of the page."""
    q = request.query.get("q", "").strip()
    offset = int_param(request, "from", 0, minimum=0)
    listing = await services_of(request).admin_rooms.list_rooms(
        offset=offset, limit=PAGE_SIZE, order_by="name", direction="f", search_term=q or None,
        public_rooms=None, empty_rooms=None)
    total = listing["total_rooms"]
    return render(request, "admin/rooms.html", section="rooms", q=q, rooms=listing["rooms"], total=total,
                  **pager(f"{P}/rooms", {"q": q}, offset, total))


@route("GET", "/rooms/{roomId}", auth=Auth.NONE, prefixes=PAGE)
@admin_only
async def admin_page_room(request: web.Request) -> web.Response:
    """GET /_chatgo/admin/rooms/{roomId}"""
    view = await services_of(request).admin_page_views.room(request.match_info["roomId"])
    return render(request, "admin/room.html", section="rooms", room=view.details, blocked_by=view.blocked_by,
                  members=view.members, deletions=view.deletions)


@route("POST", "/rooms/{roomId}/delete", auth=Auth.NONE, prefixes=PAGE)
@admin_only
async def admin_page_delete_room(request: web.Request) -> web.Response:
    """POST /_chatgo/admin/rooms/{roomId}/delete

    Starts the deletion (the admin API's v2 delete): local members are removed; checkboxes
    `block` (no one may join again) and `purge` (remove its events from the database);
    `new_room_user_id` and `message`: move the members to a notice room with that message."""
    form, room_id = await request.post(), request.match_info["roomId"]
    body = {"block": "block" in form, "purge": "purge" in form}
    for field in ("new_room_user_id", "message"):
        if (value := form_str(form, field, required=False)) is not None:
            body[field] = value
    delete_id = await services_of(request).room_deletion.start_delete(admin_of(request), room_id, body)
    return done(request, f"Deleting {room_id} (delete ID {delete_id}).", f"{P}/rooms/{path_segment(room_id)}")


@route("POST", "/rooms/{roomId}/block", auth=Auth.NONE, prefixes=PAGE)
@admin_only
async def admin_page_block_room(request: web.Request) -> web.Response:
    """POST /_chatgo/admin/rooms/{roomId}/block

    Form field `block`: "1" blocks the room (no more local joins, invites or knocks), "0" unblocks it."""
    form, room_id = await request.post(), request.match_info["roomId"]
    block = form.get("block") == "1"
    await services_of(request).admin_rooms.set_blocked(admin_of(request), room_id, {"block": block})
    return done(request, f"{room_id} is {'blocked' if block else 'unblocked'}.", f"{P}/rooms/{path_segment(room_id)}")


# --- media ----------------------------------------------------------------------------------

@route("GET", "/media", auth=Auth.NONE, prefixes=PAGE)
@admin_only
async def admin_page_media(request: web.Request) -> web.Response:
    """GET /_chatgo/admin/media

    Forms to quarantine one media, a room's or a user's (`user_id`/`room_id` fill them in)."""
    return render(request, "admin/media.html", section="media", user_id=request.query.get("user_id", ""),
                  room_id=request.query.get("room_id", ""))


@route("POST", "/media/quarantine", auth=Auth.NONE, prefixes=PAGE)
@admin_only
async def admin_page_quarantine_media(request: web.Request) -> web.Response:
    """POST /_chatgo/admin/media/quarantine

    One of the form fields `mxc` (an `mxc://server/media` URI: that media and its copies),
    `room_id` (every media posted in the room) or `user_id` (every media the user uploaded)."""
    form = await request.post()
    media, admin_id = services_of(request).admin_media, admin_of(request)
    if (mxc := form_str(form, "mxc", required=False)) is not None:
        server_name, media_id = _parse_mxc(mxc)
        count, target = await media.quarantine_media(admin_id, server_name, media_id), mxc
    elif (room_id := form_str(form, "room_id", required=False)) is not None:
        count, target = await media.quarantine_room_media(admin_id, room_id), room_id
    elif (user_id := form_str(form, "user_id", required=False)) is not None:
        count, target = await media.quarantine_user_media(admin_id, user_id), user_id
    else:
        raise MatrixError(400, Codes.MISSING_PARAM, "Give an mxc:// URI, a room ID or a user ID")
    return done(request, f"{count} media quarantined ({target}).", f"{P}/media")


def _parse_mxc(uri: str) -> tuple[str, str]:
    server_name, _, media_id = uri.removeprefix("mxc://").partition("/")
    if not uri.startswith("mxc://") or not server_name or not media_id or "/" in media_id:
        raise MatrixError(400, Codes.INVALID_PARAM, "Expected an mxc://<server>/<media ID> URI")
    return server_name, media_id


# --- reports --------------------------------------------------------------------------------

@route("GET", "/reports", auth=Auth.NONE, prefixes=PAGE)
@admin_only
async def admin_page_reports(request: web.Request) -> web.Response:
    """GET /_chatgo/admin/reports

    The newest reports of events, rooms and users."""
    view = await services_of(request).admin_page_views.reports(REPORTS_SHOWN)
    return render(request, "admin/reports.html", section="reports", reports=view)


@route("POST", "/reports/{kind}/{reportId}/resolve", auth=Auth.NONE, prefixes=PAGE)
@admin_only
async def admin_page_resolve_report(request: web.Request) -> web.Response:
    """POST /_chatgo/admin/reports/{kind}/{reportId}/resolve

    `kind`: event, room or user. Resolving deletes the report, as the admin API's DELETE does."""
    kind, report_id = request.match_info["kind"], request.match_info["reportId"]
    if kind not in REPORT_KINDS:
        raise MatrixError(404, Codes.NOT_FOUND, "No such kind of report")
    await services_of(request).reports.resolve(admin_of(request), kind, report_id)
    return done(request, f"The {kind} report {report_id} is resolved.", f"{P}/reports")


# --- federation destinations ----------------------------------------------------------------

@route("GET", "/destinations", auth=Auth.NONE, prefixes=PAGE)
@admin_only
async def admin_page_destinations(request: web.Request) -> web.Response:
    """GET /_chatgo/admin/destinations

    The servers we send to and their back-off; `q`: names containing it; `from`: the offset."""
    q = request.query.get("q", "").strip()
    offset = int_param(request, "from", 0, minimum=0)
    rows, total = await services_of(request).admin_destinations.list(offset, PAGE_SIZE, name_contains=q or None)
    return render(request, "admin/destinations.html", section="destinations", q=q, destinations=rows, total=total,
                  **pager(f"{P}/destinations", {"q": q}, offset, total))


@route("POST", "/destinations/{destination}/reset", auth=Auth.NONE, prefixes=PAGE)
@admin_only
async def admin_page_reset_destination(request: web.Request) -> web.Response:
    """POST /_chatgo/admin/destinations/{destination}/reset

    Forgets the destination's back-off: the sender tries it again now."""
    destination = request.match_info["destination"]
    await services_of(request).admin_destinations.reset_connection(admin_of(request), destination)
    return done(request, f"The back-off of {destination} is reset.", f"{P}/destinations")
