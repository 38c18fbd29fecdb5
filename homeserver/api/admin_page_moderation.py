"""The admin page's moderation screens (see homeserver/api/admin_page.py for the page itself,
its session and CSRF rules): rooms (delete, block). Each change goes through the service the
admin API uses, which records it in the audit log under the admin's user ID."""

from __future__ import annotations

from aiohttp import web

from homeserver.api.admin_page import (
    P, PAGE, PAGE_SIZE, admin_of, admin_only, done, form_str, pager, render,
)
from homeserver.api.http import Auth, int_param, route, services_of
from homeserver.api.pages import path_segment


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
