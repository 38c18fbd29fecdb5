"""The few HTML pages, rendered with aiohttp-jinja2: the landing page (the admin page is
homeserver/api/admin_page.py)."""

from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

import aiohttp_jinja2
import jinja2
from aiohttp import web

from homeserver.api.http import ROOT, Auth, route, services_of

TEMPLATES = Path(__file__).parent / "templates"


def setup_templates(app: web.Application) -> None:
    env = aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True)
    env.filters["pathquote"] = path_segment
    env.filters["utc"] = _utc


def path_segment(value: object) -> str:
    """An ID (user, room, token...) quoted as one path segment of a URL."""
    return quote(str(value), safe="")


def _utc(ts_ms: int | None) -> str:
    """A millisecond timestamp as a readable UTC time."""
    if ts_ms is None:
        return ""
    return datetime.fromtimestamp(ts_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


@route("GET", "/", auth=Auth.NONE, prefixes=ROOT)
async def landing_page(request: web.Request) -> web.Response:
    """GET /"""
    config = services_of(request).config
    return aiohttp_jinja2.render_template("index.html", request, {"server_name": config.server_name})
