"""The application services and their feeds (ChatGO's own; Synapse has no such endpoint)."""

from aiohttp import web

from homeserver.api.http import SYNAPSE_ADMIN_V1, Auth, json_response, route, services_of


@route("GET", "/appservices", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def list_appservices(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/appservices

    Every registered appservice (never its tokens) and its feed: up or backing off until when,
    transactions waiting, last success."""
    return json_response(await services_of(request).appservice_admin.list())


@route("GET", "/appservices/{appserviceId}", auth=Auth.ADMIN, prefixes=SYNAPSE_ADMIN_V1)
async def get_appservice(request: web.Request) -> web.Response:
    """GET /_synapse/admin/v1/appservices/{appserviceId}"""
    return json_response(await services_of(request).appservice_admin.appservice(request.match_info["appserviceId"]))
