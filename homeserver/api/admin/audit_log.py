"""The audit log of admin actions (ChatGO's own; Synapse has no such endpoint)."""

from aiohttp import web

from homeserver.api.http import SYNAPSE_ADMIN_V1, Auth, int_param, json_response, route, services_of


@route("GET", "/audit_log", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def list_audit_log(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/audit_log

    Newest first; `from` (a `next_token`), `limit` (default 100), and the filters `admin`
    (an admin's user ID), `target` (the user, room or media acted on) and `action` (a prefix,
    e.g. `user.` or `room.delete`)."""
    query = request.query
    entries, next_token = await services_of(request).admin_audit.page(
        from_token=query.get("from"), limit=int_param(request, "limit", 100),
        admin_id=query.get("admin"), target=query.get("target"), action=query.get("action"))
    body: dict = {"entries": [
        {"id": e.id, "ts": e.ts, "admin": e.admin_id, "action": e.action, "target": e.target, "details": e.details}
        for e in entries]}
    if next_token is not None:
        body["next_token"] = next_token
    return json_response(body)
