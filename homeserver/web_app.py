"""The aiohttp application of a listener: the handler modules its resources serve, on the
services `app.build_services()` made (homeserver/server.py starts one per listener)."""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType

from aiohttp import web

from federation import api as federation_api
from homeserver.api import admin as admin_api
from homeserver.api import admin_page, admin_page_moderation, health, pages
from homeserver.api import client as client_api
from homeserver.api import metrics as metrics_api
from homeserver.api.http import MIDDLEWARES, SERVICES, TRUST_X_FORWARDED, install_routes
from homeserver.services.graph import Services

FEDERATION_MAX_BODY_BYTES = 8 * 1024 * 1024


def modules_for(resources: Iterable[str], *, admin_on_client: bool = True) -> list[ModuleType]:
    """The handler modules a listener serves, from its configured resources (and whether the
    admin API rides on `client`, `admin_api.on_client_listeners`)."""
    resources = set(resources)
    modules: list[ModuleType] = [health]  # every listener answers health checks
    if "client" in resources:
        modules += [pages, *client_api.MODULES, *federation_api.WELL_KNOWN_MODULES]
    if "federation" in resources:
        modules += federation_api.FEDERATION_MODULES
    if "keys" in resources:
        modules += federation_api.KEY_MODULES
    if "client" in resources or "media" in resources:  # as Synapse: client implies media
        modules += client_api.MEDIA_MODULES
    if "admin" in resources or ("client" in resources and admin_on_client):  # as Synapse: it rides on client
        modules += admin_api.MODULES
    if "metrics" in resources:
        modules.append(metrics_api)
    if "admin" in resources:  # the built-in admin page: only where the admin resource is served
        modules += [admin_page, admin_page_moderation]
    return modules


def make_web_app(services: Services, resources: Iterable[str], *, x_forwarded: bool = False) -> web.Application:
    config = services.config
    resources = list(resources)
    # A federation transaction may carry 50 PDUs of up to 64 KiB each, plus EDUs: more than a
    # client request may. Media uploads stream and have their own limit.
    body_limit = config.limits.max_request_body_bytes
    if "federation" in resources:
        body_limit = max(body_limit, FEDERATION_MAX_BODY_BYTES)
    app = web.Application(middlewares=MIDDLEWARES, client_max_size=body_limit)
    app[SERVICES] = services
    app[TRUST_X_FORWARDED] = x_forwarded
    pages.setup_templates(app)
    install_routes(app, modules_for(resources, admin_on_client=config.admin_api.on_client_listeners), services)
    return app
