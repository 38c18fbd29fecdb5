"""Spec file: client-server/rooms.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, json_response, requester_of, route, services_of
from homeserver.errors import Codes, MatrixError

MEMBERSHIPS = {"join", "invite", "knock", "leave", "ban"}


@route("GET", "/rooms/{roomId}/event/{eventId}", auth=Auth.USER, guest=True)
async def get_one_room_event(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/rooms/{roomId}/event/{eventId}"""
    m = request.match_info
    event = await services_of(request).timeline.get_event(requester_of(request), m["roomId"], m["eventId"])
    return json_response(event)


@route("GET", "/rooms/{roomId}/state/{eventType}/{stateKey}", auth=Auth.USER, guest=True,
       patterns={"stateKey": "[^/]*"})
async def get_room_state_with_key(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}"""
    return await _state_event(request, request.match_info.get("stateKey", ""))


@route("GET", "/rooms/{roomId}/state/{eventType}", auth=Auth.USER, guest=True, variant_of="/rooms/{roomId}/state/{eventType}/{stateKey}")
async def get_room_state_without_key(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/rooms/{roomId}/state/{eventType}

    The spec's path with an empty state key, as clients send it.
    """
    return await _state_event(request, "")


async def _state_event(request: web.Request, state_key: str) -> web.Response:
    m = request.match_info
    event = await services_of(request).timeline.get_state_event(
        requester_of(request), m["roomId"], m["eventType"], state_key
    )
    if request.query.get("format") == "event":
        return json_response(event)
    return json_response(event["content"])


@route("GET", "/rooms/{roomId}/state", auth=Auth.USER, guest=True)
async def get_room_state(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/rooms/{roomId}/state"""
    events = await services_of(request).timeline.get_state(requester_of(request), request.match_info["roomId"])
    return json_response(events)


@route("GET", "/rooms/{roomId}/members", auth=Auth.USER, guest=True)
async def get_members_by_room(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/rooms/{roomId}/members"""
    membership = request.query.get("membership")
    not_membership = request.query.get("not_membership")
    for value in (membership, not_membership):
        if value is not None and value not in MEMBERSHIPS:
            raise MatrixError(400, Codes.INVALID_PARAM, f"Unknown membership {value!r}")
    chunk = await services_of(request).timeline.members(
        requester_of(request), request.match_info["roomId"], membership, not_membership, at=request.query.get("at")
    )
    return json_response({"chunk": chunk})


@route("GET", "/rooms/{roomId}/joined_members", auth=Auth.USER)
async def get_joined_members_by_room(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/rooms/{roomId}/joined_members"""
    joined = await services_of(request).timeline.joined_members(requester_of(request), request.match_info["roomId"])
    return json_response({"joined": joined})
