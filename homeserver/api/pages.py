"""The few HTML pages, rendered with aiohttp-jinja2: the landing page."""

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from homeserver.api.http import ROOT, Auth, route, services_of

TEMPLATES = Path(__file__).parent / "templates"


def setup_templates(app: web.Application) -> None:
    aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True)


@route("GET", "/", auth=Auth.NONE, prefixes=ROOT)
async def landing_page(request: web.Request) -> web.Response:
    """GET /"""
    config = services_of(request).config
    return aiohttp_jinja2.render_template("index.html", request, {"server_name": config.server_name})
