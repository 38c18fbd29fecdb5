"""CAS single sign-on: the pages the browser goes through (no OpenAPI file: the ticket URL is
ours, named as Synapse names it, and the UIA fallback page is described in the spec's prose)."""

from aiohttp import web

from homeserver.api.http import Auth, route, services_of


@route("GET", "/login/cas/redirect", auth=Auth.NONE)
async def cas_login_redirect(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/login/cas/redirect"""
    # The pre-SSO name of /login/sso/redirect, which Synapse still serves.
    raise web.HTTPFound(services_of(request).cas.login_redirect(request.query.get("redirectUrl")))


@route("GET", "/login/cas/ticket", auth=Auth.NONE)
async def cas_ticket(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/login/cas/ticket"""
    q = request.query
    page = await services_of(request).cas.ticket(q.get("ticket"), q.get("redirectUrl"), q.get("session"))
    return web.Response(text=page, content_type="text/html")


@route("GET", "/auth/m.login.sso/fallback/web", auth=Auth.NONE)
async def sso_auth_fallback(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/auth/m.login.sso/fallback/web"""
    # Spec, "Fallback": the page a client opens for a UIA stage it cannot do itself.
    raise web.HTTPFound(services_of(request).cas.uia_redirect(request.query.get("session")))
