"""Spec file: client-server/support.yaml."""

from aiohttp import web

from homeserver.api.http import WELL_KNOWN, Auth, json_response, route, services_of
from homeserver.errors import Codes, MatrixError


@route("GET", "/matrix/support", auth=Auth.NONE, prefixes=WELL_KNOWN)
async def get_wellknown_support(request: web.Request) -> web.Response:
    """GET /.well-known/matrix/support"""
    support = services_of(request).config.support
    if not support.contacts and not support.support_page:
        raise MatrixError(404, Codes.NOT_FOUND, "No support contacts are configured")
    body: dict = {}
    if support.contacts:
        body["contacts"] = [{k: v for k, v in (("matrix_id", c.matrix_id), ("email_address", c.email_address),
                                              ("role", c.role)) if v is not None} for c in support.contacts]
    if support.support_page:
        body["support_page"] = support.support_page
    return json_response(body)
