"""Health endpoints, on every listener whatever its resources (no OpenAPI file: a feature module)."""

from aiohttp import web

from homeserver.api.http import ROOT, Auth, route, services_of


@route("GET", "/health", auth=Auth.NONE, prefixes=ROOT)
async def health(request: web.Request) -> web.Response:
    """GET /health

    Liveness, as Synapse's /health: the process answers.
    """
    return web.Response(text="OK")


@route("GET", "/health/ready", auth=Auth.NONE, prefixes=ROOT)
async def health_ready(request: web.Request) -> web.Response:
    """GET /health/ready

    Readiness: the database answers too (503 when it does not).
    """
    if await services_of(request).health.database_answers():
        return web.Response(text="OK")
    return web.Response(status=503, text="database unavailable")
