"""Background updates, as Synapse's admin API serves them (docs: background_updates.md).

ChatGO has none (migrations run before the server serves): see services/admin/server_info.py."""

from aiohttp import web

from homeserver.api.http import SYNAPSE_ADMIN_V1, Auth, json_response, read_json_object, requester_of, route, \
    services_of


@route("GET", "/background_updates/status", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def get_background_updates_status(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/background_updates/status"""
    return json_response(services_of(request).server_info.background_updates_status())


@route("GET", "/background_updates/enabled", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def get_background_updates_enabled(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/background_updates/enabled"""
    return json_response({"enabled": services_of(request).server_info.background_updates_enabled()})


@route("POST", "/background_updates/enabled", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def set_background_updates_enabled(request: web.Request) -> web.Response:
    """POST /_synapse/admin/v1/background_updates/enabled"""
    body = await read_json_object(request)
    enabled = await services_of(request).server_info.set_background_updates_enabled(
        requester_of(request).user_id, body.get("enabled", True))
    return json_response({"enabled": enabled})


@route("POST", "/background_updates/start_job", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def start_background_update_job(request: web.Request) -> web.Response:
    """POST /_synapse/admin/v1/background_updates/start_job

    Synapse's `populate_stats_process_rooms` and `regenerate_directory` are answered as done
    (ChatGO computes both live); any other `job_name` is 400."""
    body = await read_json_object(request)
    await services_of(request).server_info.start_background_job(requester_of(request).user_id, body.get("job_name"))
    return json_response({})
