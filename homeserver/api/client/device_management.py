"""Spec file: client-server/device_management.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, json_response, read_json_object, requester_of, route, services_of
from homeserver.errors import bad_json
from homeserver.services.accounts.devices import Device


def _device_json(device: Device) -> dict:
    # Unknown values are sent as null rather than left out: clients such as matrix-nio
    # require the keys, and Synapse always sends them.
    return {
        "device_id": device.device_id,
        "display_name": device.display_name,
        "last_seen_ip": device.last_seen_ip,
        "last_seen_ts": device.last_seen_ts,
    }


@route("GET", "/devices", auth=Auth.USER, guest=True)
async def get_devices(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/devices"""
    devices = await services_of(request).devices.list_devices(requester_of(request).user_id)
    return json_response({"devices": [_device_json(d) for d in devices]})


@route("GET", "/devices/{deviceId}", auth=Auth.USER, guest=True)
async def get_device(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/devices/{deviceId}"""
    device = await services_of(request).devices.get_device(
        requester_of(request).user_id, request.match_info["deviceId"]
    )
    return json_response(_device_json(device))


@route("PUT", "/devices/{deviceId}", auth=Auth.USER, guest=True)
async def update_device(request: web.Request) -> web.Response:
    """PUT /_matrix/client/v3/devices/{deviceId}"""
    body = await read_json_object(request)
    requester = requester_of(request)
    await services_of(request).devices.update_device(
        requester.user_id, request.match_info["deviceId"], body, create=requester.app_service_id is not None
    )
    return json_response({})


@route("DELETE", "/devices/{deviceId}", auth=Auth.USER)
async def delete_device(request: web.Request) -> web.Response:
    """DELETE /_matrix/client/v3/devices/{deviceId}"""
    body = await read_json_object(request, allow_empty=True)
    device_id = request.match_info["deviceId"]
    # The session is bound to this device (as Synapse binds it to the URI): it cannot be
    # carried on to delete another.
    await services_of(request).devices.delete_devices(
        requester_of(request), [device_id], body.get("auth"), operation=f"delete_device {device_id}"
    )
    return json_response({})


@route("POST", "/delete_devices", auth=Auth.USER)
async def delete_devices(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/delete_devices"""
    body = await read_json_object(request)
    device_ids = body.get("devices")
    if not isinstance(device_ids, list) or not all(isinstance(d, str) for d in device_ids):
        raise bad_json("'devices' must be a list of device IDs")
    await services_of(request).devices.delete_devices(
        requester_of(request), device_ids, body.get("auth"), operation="delete_devices"
    )
    return json_response({})
