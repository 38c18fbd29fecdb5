"""Dehydrated devices (MSC3814, unstable; no spec file): store, fetch and delete the user's
dehydrated device, and read the to-device messages sent to it."""

from aiohttp import web

from homeserver.api.http import (
    CLIENT_UNSTABLE, Auth, int_param, json_response, read_json_object, requester_of, route, services_of,
)
from homeserver.errors import Codes, MatrixError
from homeserver.services.e2ee.dehydrated_devices import DEFAULT_EVENTS_LIMIT

BASE = "/org.matrix.msc3814.v1/dehydrated_device"


@route("GET", BASE, auth=Auth.USER, prefixes=CLIENT_UNSTABLE)
async def get_dehydrated_device(request: web.Request) -> web.Response:
    """GET /_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device"""
    return json_response(await services_of(request).dehydrated_devices.get(requester_of(request)))


@route("PUT", BASE, auth=Auth.USER, prefixes=CLIENT_UNSTABLE)
async def put_dehydrated_device(request: web.Request) -> web.Response:
    """PUT /_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device"""
    body = await read_json_object(request)
    return json_response(await services_of(request).dehydrated_devices.put(requester_of(request), body))


@route("DELETE", BASE, auth=Auth.USER, prefixes=CLIENT_UNSTABLE)
async def delete_dehydrated_device(request: web.Request) -> web.Response:
    """DELETE /_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device"""
    return json_response(await services_of(request).dehydrated_devices.delete(requester_of(request)))


@route("POST", BASE + "/{deviceId}/events", auth=Auth.USER, prefixes=CLIENT_UNSTABLE)
async def post_dehydrated_device_events(request: web.Request) -> web.Response:
    """POST /_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device/{deviceId}/events

    The form Element uses: `next_batch` in the body; the response always carries one.
    """
    body = await read_json_object(request, allow_empty=True)
    next_batch = body.get("next_batch")
    if next_batch is not None and not isinstance(next_batch, str):
        raise MatrixError(400, Codes.BAD_JSON, "'next_batch' must be a string")
    events, token, _ = await services_of(request).dehydrated_devices.events(
        requester_of(request), request.match_info["deviceId"], next_batch,
        int_param(request, "limit", DEFAULT_EVENTS_LIMIT, minimum=1))
    return json_response({"events": events, "next_batch": token})


@route("GET", BASE + "/{deviceId}/events", auth=Auth.USER, prefixes=CLIENT_UNSTABLE)
async def get_dehydrated_device_events(request: web.Request) -> web.Response:
    """GET /_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device/{deviceId}/events

    The later form of the MSC: `from` in the query; `next_batch` only while more are waiting.
    """
    events, token, limited = await services_of(request).dehydrated_devices.events(
        requester_of(request), request.match_info["deviceId"], request.query.get("from"),
        int_param(request, "limit", DEFAULT_EVENTS_LIMIT, minimum=1))
    return json_response({"events": events, "next_batch": token} if limited else {"events": events})
