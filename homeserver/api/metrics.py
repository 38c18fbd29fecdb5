"""Prometheus metrics, on listeners with the `metrics` resource (no OpenAPI file: a feature
module). Served at /metrics and at Synapse's /_synapse/metrics, so scrape configs written
for Synapse work unchanged. docs/metrics.md lists the metrics.
"""

from aiohttp import web

from homeserver.api.http import ROOT, SYNAPSE, Auth, route, services_of

# The text format every Prometheus reads; our metric names need nothing newer.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@route("GET", "/metrics", auth=Auth.NONE, prefixes=ROOT + SYNAPSE)
async def metrics(request: web.Request) -> web.Response:
    """GET /metrics

    The server's metrics in Prometheus' text format.
    """
    return web.Response(body=await services_of(request).metrics.render(),
                        headers={"Content-Type": CONTENT_TYPE})
