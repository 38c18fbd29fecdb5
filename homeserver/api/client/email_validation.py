"""The link of our e-mail validation mails (no OpenAPI file: the URL is ours, the spec leaves
it to the server)."""

from aiohttp import web

from homeserver.api.http import CLIENT_UNSTABLE, Auth, route, services_of


@route("GET", "/chatgo/email/submit_token", auth=Auth.NONE, rate_limited=True, prefixes=CLIENT_UNSTABLE)
async def submit_email_token(request: web.Request) -> web.Response:
    """GET /_matrix/client/unstable/chatgo/email/submit_token"""
    q = request.query
    page = await services_of(request).email.submit_token(q.get("sid"), q.get("client_secret"), q.get("token"))
    return web.Response(text=page, content_type="text/html")
