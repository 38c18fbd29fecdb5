"""Spec file: client-server/versions.yaml."""

from aiohttp import web

from homeserver.api.http import ROOT, Auth, json_response, route, services_of

SPEC_VERSIONS = [
    "r0.0.1", "r0.1.0", "r0.2.0", "r0.3.0", "r0.4.0", "r0.5.0", "r0.6.0", "r0.6.1",
    "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9", "v1.10",
    "v1.11", "v1.12", "v1.13", "v1.14", "v1.15", "v1.16", "v1.17", "v1.18", "v1.19",
]


@route("GET", "/_matrix/client/versions", auth=Auth.NONE, prefixes=ROOT)
async def get_versions(request: web.Request) -> web.Response:
    """GET /_matrix/client/versions"""
    # Simplified sliding sync (MSC4186): Element X looks for this flag.
    unstable = {"org.matrix.simplified_msc3575": True}
    if services_of(request).delayed_events.enabled:
        unstable["org.matrix.msc4140"] = True  # delayed events: Element Call looks for it
    unstable["org.matrix.msc3814"] = True  # dehydrated devices: Element looks for it
    return json_response({"versions": SPEC_VERSIONS, "unstable_features": unstable})
