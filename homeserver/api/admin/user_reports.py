"""User reports, as Synapse's admin API serves them (its `user_reports` endpoints), and room
reports in the same shape (ChatGO's own: Synapse stores room reports but lists them nowhere)."""

from typing import Any

from aiohttp import web

from homeserver.api.admin.params import direction, offset_paging, page_body
from homeserver.api.http import SYNAPSE_ADMIN_V1, Auth, json_response, requester_of, route, services_of


def _user_report_json(report: Any) -> dict[str, Any]:
    return {"id": report.id, "received_ts": report.received_ts, "target_user_id": report.target_user_id,
            "user_id": report.user_id, "reason": report.reason}


def _room_report_json(report: Any) -> dict[str, Any]:
    return {"id": report.id, "received_ts": report.received_ts, "room_id": report.room_id,
            "user_id": report.user_id, "reason": report.reason, "name": report.name,
            "canonical_alias": report.canonical_alias}


@route("GET", "/user_reports", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def list_user_reports(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/user_reports

    Offset paging, newest first unless `dir=f`; filters `user_id` (the reporter) and
    `target_user_id` (the user reported), each matching any part of the ID."""
    start, limit = offset_paging(request)
    reports, total = await services_of(request).reports.user_reports(
        start, limit, backwards=direction(request, "b") == "b", reporter=request.query.get("user_id"),
        target_user_id=request.query.get("target_user_id"))
    return json_response(page_body("user_reports", [_user_report_json(r) for r in reports], start, limit, total))


@route("GET", "/user_reports/{report_id}", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def get_user_report(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/user_reports/{report_id}"""
    return json_response(_user_report_json(
        await services_of(request).reports.user_report(request.match_info["report_id"])))


@route("DELETE", "/user_reports/{report_id}", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def delete_user_report(request: web.Request) -> web.Response:
    """DELETE /_synapse/admin/v1/user_reports/{report_id}"""
    await services_of(request).reports.resolve(requester_of(request).user_id, "user",
                                               request.match_info["report_id"])
    return json_response({})


@route("GET", "/room_reports", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def list_room_reports(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/room_reports

    ChatGO's own, shaped as the user reports: filters `user_id` (the reporter) and `room_id`."""
    start, limit = offset_paging(request)
    reports, total = await services_of(request).reports.room_reports(
        start, limit, backwards=direction(request, "b") == "b", reporter=request.query.get("user_id"),
        room_id=request.query.get("room_id"))
    return json_response(page_body("room_reports", [_room_report_json(r) for r in reports], start, limit, total))


@route("GET", "/room_reports/{report_id}", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def get_room_report(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/room_reports/{report_id}"""
    return json_response(_room_report_json(
        await services_of(request).reports.room_report(request.match_info["report_id"])))


@route("DELETE", "/room_reports/{report_id}", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def delete_room_report(request: web.Request) -> web.Response:
    """DELETE /_synapse/admin/v1/room_reports/{report_id}"""
    await services_of(request).reports.resolve(requester_of(request).user_id, "room",
                                               request.match_info["report_id"])
    return json_response({})
