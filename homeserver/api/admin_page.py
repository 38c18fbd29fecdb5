"""The built-in admin page (ChatGO's own: no spec file, nothing like it in Synapse), on
listeners with the `admin` resource under `/_chatgo/admin/`.

Server-rendered with aiohttp-jinja2 (templates/admin/, autoescaped), with htmx (vendored in
static/admin/) for searches and buttons. A server admin logs in with their password; the
session is an access token of a device of its own in an HttpOnly, SameSite=Strict cookie
(Secure behind TLS). Every state-changing request must carry the session's CSRF token (the
`csrf_token` form field, or the `X-CSRF-Token` header htmx sends). Handlers translate HTTP
and call the same services as the admin API, which record each change in the audit log.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web
from multidict import MultiDictProxy

from homeserver.api.http import TRUST_X_FORWARDED, Auth, Handler, client_ip, int_param, route, services_of
from homeserver.api.pages import path_segment
from homeserver.errors import Codes, MatrixError
from homeserver.services.admin.users import UserListQuery
from homeserver.services.auth import Requester

PAGE = ("/_chatgo/admin",)
P = PAGE[0]
COOKIE = "chatgo_admin_session"
SESSION_KEY = "chatgo.admin_page_session"
STATIC = Path(__file__).parent / "static" / "admin"
STATIC_TYPES = {"htmx.min.js": "text/javascript", "admin.css": "text/css", "htmx.LICENSE.txt": "text/plain"}
SECURITY_HEADERS = {
    # Scripts and styles only from our own files: an injected tag would not run.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
PAGE_SIZE = 50


@dataclass(frozen=True)
class PageSession:
    requester: Requester
    csrf_token: str


def admin_only(handler: Handler) -> Handler:
    """A page for a logged-in server admin: no session sends the browser to the login page; a
    POST without the session's CSRF token gets 403; a MatrixError is shown as a notice."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        sessions = services_of(request).admin_page_sessions
        token = request.cookies.get(COOKIE)
        try:
            if token is None:
                raise MatrixError(401, Codes.MISSING_TOKEN, "Not logged in")
            requester = await sessions.authenticate(token)
        except MatrixError:
            return _to_login(request)
        request[SESSION_KEY] = PageSession(requester, sessions.csrf_token(token))
        if request.method != "GET":
            form = await request.post()
            sent = request.headers.get("X-CSRF-Token") or _str_or_none(form.get("csrf_token"))
            if not sessions.csrf_matches(token, sent):
                return _failed(request, MatrixError(403, Codes.FORBIDDEN, "Missing or wrong CSRF token"))
        try:
            return await handler(request)
        except MatrixError as err:
            return _failed(request, err)

    return wrapped


def page_requester(request: web.Request) -> Requester:
    """The admin of the session (pages wrapped in `admin_only`)."""
    return request[SESSION_KEY].requester


def admin_of(request: web.Request) -> str:
    return page_requester(request).user_id


def pager(base: str, params: dict[str, Any], offset: int, total: int) -> dict[str, str | None]:
    """Links to the previous and next pages of an offset-paged list."""
    def at(start: int) -> str:
        return f"{base}?{_query({**params, 'from': start or None})}"
    return {"prev_url": at(max(0, offset - PAGE_SIZE)) if offset > 0 else None,
            "next_url": at(offset + PAGE_SIZE) if offset + PAGE_SIZE < total else None}


def is_htmx(request: web.Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    session: PageSession | None = request.get(SESSION_KEY)
    response = aiohttp_jinja2.render_template(template, request, {
        "P": P, "server_name": services_of(request).config.server_name,
        "admin_id": session.requester.user_id if session else None,
        "csrf_token": session.csrf_token if session else None, "here": request.path_qs, **context,
    }, status=status)
    response.headers.update(SECURITY_HEADERS)
    return response


def done(request: web.Request, message: str, back: str) -> web.Response:
    """A change went through: for htmx, a notice to swap in and the `changed` event (on which
    the page's lists and details reload themselves); a browser without htmx goes back."""
    if is_htmx(request):
        response = render(request, "admin/notice.html", ok=True, message=message)
        response.headers["HX-Trigger"] = "changed"
        return response
    return redirect(back)


def redirect(target: str) -> web.Response:
    """303 See Other: after a form, the browser GETs the next page."""
    return web.Response(status=303, headers={"Location": target, **SECURITY_HEADERS})


def _failed(request: web.Request, err: MatrixError) -> web.Response:
    template = "admin/notice.html" if is_htmx(request) else "admin/message.html"
    return render(request, template, status=err.status, ok=False, message=err.message)


def _to_login(request: web.Request) -> web.Response:
    target = f"{P}/login"
    if request.method == "GET" and request.path != f"{P}/":
        target += "?" + _query({"next": request.path_qs})
    if is_htmx(request):
        return web.Response(status=401, headers={"HX-Redirect": target, **SECURITY_HEADERS})
    response = redirect(target)
    response.del_cookie(COOKIE, path=P)
    return response


def _query(params: dict[str, Any]) -> str:
    return urlencode({k: v for k, v in params.items() if v not in (None, "")})


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def form_str(form: MultiDictProxy, name: str, *, required: bool = True, strip: bool = True) -> str | None:
    value = _str_or_none(form.get(name))
    value = value.strip() if value is not None and strip else value
    if not value:
        if required:
            raise MatrixError(400, Codes.MISSING_PARAM, f"'{name}' is required")
        return None
    return value


def form_int(form: MultiDictProxy, name: str) -> int | None:
    value = form_str(form, name, required=False)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise MatrixError(400, Codes.INVALID_PARAM, f"'{name}' must be a whole number") from None


def form_utc_ms(form: MultiDictProxy, name: str) -> int | None:
    """A `datetime-local` field read as UTC, in milliseconds."""
    value = form_str(form, name, required=False)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise MatrixError(400, Codes.INVALID_PARAM, f"'{name}' must be a date and time") from None
    return int(moment.replace(tzinfo=moment.tzinfo or timezone.utc).timestamp() * 1000)


def _secure(request: web.Request) -> bool:
    """TLS on this listener, or on the reverse proxy in front of a listener that trusts it."""
    forwarded = request.app.get(TRUST_X_FORWARDED) and request.headers.get("X-Forwarded-Proto", "").lower() == "https"
    return request.secure or bool(forwarded)


def _safe_next(value: str | None) -> str:
    """Where to go after logging in: a page of ours, never another site."""
    if value and value.startswith(P + "/") and "//" not in value and "\\" not in value:
        return value
    return f"{P}/users"


# --- static files, login, logout ----------------------------------------------------------

@route("GET", "/static/{name}", auth=Auth.NONE, prefixes=PAGE)
async def admin_page_static(request: web.Request) -> web.StreamResponse:
    """GET /_chatgo/admin/static/{name}

    The page's stylesheet and the vendored htmx (with its licence note)."""
    name = request.match_info["name"]
    if name not in STATIC_TYPES:
        raise MatrixError(404, Codes.NOT_FOUND, "No such file")
    return web.Response(body=(STATIC / name).read_bytes(), content_type=STATIC_TYPES[name],
                        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"})


@route("GET", "/", auth=Auth.NONE, prefixes=PAGE)
async def admin_page_home(request: web.Request) -> web.StreamResponse:
    """GET /_chatgo/admin/"""
    return redirect(f"{P}/users")


@route("GET", "/login", auth=Auth.NONE, prefixes=PAGE)
async def admin_page_login_form(request: web.Request) -> web.Response:
    """GET /_chatgo/admin/login"""
    return render(request, "admin/login.html", next=_safe_next(request.query.get("next")))


@route("POST", "/login", auth=Auth.NONE, rate_limited=True, prefixes=PAGE)
async def admin_page_log_in(request: web.Request) -> web.Response:
    """POST /_chatgo/admin/login

    Form fields `username` (a localpart or user ID), `password`, `next` (a page to go to)."""
    form = await request.post()
    username, password = _str_or_none(form.get("username")) or "", _str_or_none(form.get("password")) or ""
    after = _safe_next(_str_or_none(form.get("next")))
    try:
        token = await services_of(request).admin_page_sessions.log_in(username.strip(), password,
                                                                      client_ip=client_ip(request))
    except MatrixError as err:
        return render(request, "admin/login.html", status=err.status, error=err.message, username=username,
                      next=after)
    response = redirect(after)
    response.set_cookie(COOKIE, token, path=P, httponly=True, samesite="Strict", secure=_secure(request))
    return response


@route("POST", "/logout", auth=Auth.NONE, prefixes=PAGE)
@admin_only
async def admin_page_log_out(request: web.Request) -> web.Response:
    """POST /_chatgo/admin/logout"""
    await services_of(request).admin_page_sessions.log_out(request[SESSION_KEY].requester)
    response = redirect(f"{P}/login")
    response.del_cookie(COOKIE, path=P)
    return response


# --- the audit log --------------------------------------------------------------------------

@route("GET", "/audit_log", auth=Auth.NONE, prefixes=PAGE)
@admin_only
async def admin_page_audit_log(request: web.Request) -> web.Response:
    """GET /_chatgo/admin/audit_log

    Newest first; filters `admin`, `target`, `action` (a prefix); paging with `from`."""
    query = request.query
    filters = {name: query.get(name, "").strip() or None for name in ("admin", "target", "action")}
    entries, next_token = await services_of(request).admin_audit.page(
        from_token=query.get("from") or None, limit=PAGE_SIZE, admin_id=filters["admin"], target=filters["target"],
        action=filters["action"])
    return render(request, "admin/audit_log.html", section="audit", filters=filters, entries=entries,
                  details=[json.dumps(e.details, sort_keys=True) if e.details else "" for e in entries],
                  next_url=f"{P}/audit_log?{_query({**filters, 'from': next_token})}" if next_token else None)


# --- registration tokens ----------------------------------------------------------------------

@route("GET", "/registration_tokens", auth=Auth.NONE, prefixes=PAGE)
@admin_only
async def admin_page_registration_tokens(request: web.Request) -> web.Response:
    """GET /_chatgo/admin/registration_tokens"""
    tokens = await services_of(request).registration_tokens.list()
    return render(request, "admin/registration_tokens.html", section="registration_tokens", tokens=tokens)


@route("POST", "/registration_tokens", auth=Auth.NONE, prefixes=PAGE)
@admin_only
async def admin_page_create_registration_token(request: web.Request) -> web.Response:
    """POST /_chatgo/admin/registration_tokens

    Form fields (all optional): `token`, `uses_allowed`, `expiry` (a UTC date and time)."""
    form = await request.post()
    row = await services_of(request).registration_tokens.create(
        form_str(form, "token", required=False), uses_allowed=form_int(form, "uses_allowed"),
        expiry_ts=form_utc_ms(form, "expiry"), admin_id=admin_of(request))
    return done(request, f"Registration token {row.token} created.", f"{P}/registration_tokens")


@route("POST", "/registration_tokens/{token}/delete", auth=Auth.NONE, prefixes=PAGE)
@admin_only
async def admin_page_delete_registration_token(request: web.Request) -> web.Response:
    """POST /_chatgo/admin/registration_tokens/{token}/delete"""
    token = request.match_info["token"]
    await services_of(request).registration_tokens.delete(token, admin_id=admin_of(request))
    return done(request, f"Registration token {token} deleted.", f"{P}/registration_tokens")


# --- users ----------------------------------------------------------------------------------

@route("GET", "/users", auth=Auth.NONE, prefixes=PAGE)
@admin_only
async def admin_page_users(request: web.Request) -> web.Response:
    """GET /_chatgo/admin/users

    `q`: user IDs or display names containing it; `deactivated=1` lists deactivated accounts
    too; `from`: the offset of the page."""
    q = request.query.get("q", "").strip()
    with_deactivated = request.query.get("deactivated") == "1"
    offset = int_param(request, "from", 0, minimum=0)
    listing = await services_of(request).admin_users.list_users(UserListQuery(
        offset=offset, limit=PAGE_SIZE, name=q or None, deactivated=None if with_deactivated else False,
        include_locked=True))
    return render(request, "admin/users.html", section="users", q=q, with_deactivated=with_deactivated,
                  users=listing["users"], total=listing["total"],
                  **pager(f"{P}/users", {"q": q, "deactivated": "1" if with_deactivated else None}, offset,
                          listing["total"]))


@route("GET", "/users/{userId}", auth=Auth.NONE, prefixes=PAGE)
@admin_only
async def admin_page_user(request: web.Request) -> web.Response:
    """GET /_chatgo/admin/users/{userId}"""
    user = await services_of(request).admin_users.get_user(request.match_info["userId"])
    return render(request, "admin/user.html", section="users", user=user)


@route("POST", "/users/{userId}/deactivate", auth=Auth.NONE, prefixes=PAGE)
@admin_only
async def admin_page_deactivate_user(request: web.Request) -> web.Response:
    """POST /_chatgo/admin/users/{userId}/deactivate

    Form field `erase` (a checkbox): also erase the account (profile gone, messages redacted
    for those who join later)."""
    user_id, erase = request.match_info["userId"], "erase" in await request.post()
    await services_of(request).admin_users.deactivate(page_requester(request), user_id, {"erase": erase})
    return done(request, f"{user_id} is deactivated{' and erased' if erase else ''}.", f"{P}/users/{path_segment(user_id)}")


@route("POST", "/users/{userId}/password", auth=Auth.NONE, prefixes=PAGE)
@admin_only
async def admin_page_reset_password(request: web.Request) -> web.Response:
    """POST /_chatgo/admin/users/{userId}/password

    Form fields `new_password`, `logout_devices` (a checkbox: end the user's sessions)."""
    form, user_id = await request.post(), request.match_info["userId"]
    await services_of(request).admin_users.reset_password(page_requester(request), user_id, {
        "new_password": form_str(form, "new_password", strip=False), "logout_devices": "logout_devices" in form})
    return done(request, f"The password of {user_id} is changed.", f"{P}/users/{path_segment(user_id)}")
