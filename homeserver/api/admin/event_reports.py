"""Event reports, as Synapse's admin API serves them (docs: event_reports.md)."""

from typing import Any

from aiohttp import web

from homeserver.api.admin.params import direction, offset_paging, page_body
from homeserver.api.http import SYNAPSE_ADMIN_V1, Auth, json_response, requester_of, route, services_of


def _report_json(report: Any) -> dict[str, Any]:
    """An EventReport as Synapse's event report object."""
    return {"id": report.id, "received_ts": report.received_ts, "room_id": report.room_id,
            "event_id": report.event_id, "user_id": report.user_id, "reason": report.reason,
            "score": report.score, "sender": report.sender, "name": report.name,
            "canonical_alias": report.canonical_alias}


@route("GET", "/event_reports", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def list_event_reports(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/event_reports

    Offset paging (`from`, `limit`), newest first unless `dir=f`; filters `user_id` (the
    reporter, any part), `room_id` (any part) and `event_sender_user_id` (the reported sender)."""
    start, limit = offset_paging(request)
    query = request.query
    reports, total = await services_of(request).reports.event_reports(
        start, limit, backwards=direction(request, "b") == "b", reporter=query.get("user_id"),
        room_id=query.get("room_id"), event_sender=query.get("event_sender_user_id"))
    return json_response(page_body("event_reports", [_report_json(r) for r in reports], start, limit, total))


@route("GET", "/event_reports/{report_id}", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def get_event_report(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/event_reports/{report_id}"""
    report, event_json = await services_of(request).reports.event_report(request.match_info["report_id"])
    return json_response({**_report_json(report), "event_json": event_json})


@route("DELETE", "/event_reports/{report_id}", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def delete_event_report(request: web.Request) -> web.Response:
    """DELETE /_synapse/admin/v1/event_reports/{report_id}

    Resolves the report: it leaves the list."""
    await services_of(request).reports.resolve(requester_of(request).user_id, "event",
                                               request.match_info["report_id"])
    return json_response({})
