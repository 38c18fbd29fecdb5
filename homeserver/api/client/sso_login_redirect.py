"""Spec file: client-server/sso_login_redirect.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, route, services_of


@route("GET", "/login/sso/redirect", auth=Auth.NONE)
async def redirect_to_sso(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/login/sso/redirect"""
    raise web.HTTPFound(services_of(request).cas.login_redirect(request.query.get("redirectUrl")))


@route("GET", "/login/sso/redirect/{idpId}", auth=Auth.NONE)
async def redirect_to_id_p(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/login/sso/redirect/{idpId}"""
    raise web.HTTPFound(services_of(request).cas.login_redirect(request.query.get("redirectUrl"),
                                                                request.match_info["idpId"]))
