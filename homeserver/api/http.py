"""Routes, middlewares and JSON helpers shared by every handler.

A handler declares its route with `@route(method, spec_path, auth=..., rate_limited=...)`;
`spec_path` is the OpenAPI path key exactly as the spec writes it (`/rooms/{roomId}/join`),
and `prefixes` says under which API prefixes it is served (`r0` and `v3` by default for the
client API). `install_routes()` registers every decorated handler of the given modules,
wrapped with authentication and rate limiting, and `routes_table()` lists them for
`chatgo routes`.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import itertools
import logging
import math
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from time import perf_counter
from types import ModuleType
from typing import Any

import orjson
from aiohttp import web

from homeserver.errors import Codes, MatrixError
from homeserver.logs import ACCESS_LOGGER, REQUEST_ID
from homeserver.services.auth import Requester
from homeserver.services.graph import Services
from homeserver.services.ratelimit import Action

logger = logging.getLogger(__name__)
# One line per request: method, path, servlet, user (or origin server), client IP, status, duration.
access_logger = logging.getLogger(ACCESS_LOGGER)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CLIENT_V3 = ("/_matrix/client/r0", "/_matrix/client/v3")
CLIENT_V1 = ("/_matrix/client/v1",)
CLIENT_UNSTABLE = ("/_matrix/client/unstable",)
WELL_KNOWN = ("/.well-known",)
ROOT = ("",)
FEDERATION_V1 = ("/_matrix/federation/v1",)
FEDERATION_V2 = ("/_matrix/federation/v2",)
KEY_V2 = ("/_matrix/key/v2",)
SYNAPSE_ADMIN_V1 = ("/_synapse/admin/v1",)
SYNAPSE_ADMIN_V2 = ("/_synapse/admin/v2",)
SYNAPSE_ADMIN_V3 = ("/_synapse/admin/v3",)
SYNAPSE = ("/_synapse",)
# Spec files whose path keys carry the version themselves (admin.yaml: "/v3/admin/whois/...").
CLIENT_BASE = ("/_matrix/client",)

REQUESTER_KEY = "chatgo.requester"
ORIGIN_KEY = "chatgo.origin"
SERVICES = web.AppKey("services", Services)
# Set on apps of listeners behind a reverse proxy: the client address is in X-Forwarded-For.
TRUST_X_FORWARDED = web.AppKey("trust_x_forwarded", bool)


def services_of(request: web.Request) -> Services:
    return request.app[SERVICES]


class Auth(enum.Enum):
    USER = "user"          # a valid access token is required
    OPTIONAL = "optional"  # a token is used when given (and must then be valid)
    NONE = "none"          # no token is read
    SERVER = "server"      # an X-Matrix signed federation request
    ADMIN = "admin"        # a valid access token of a server admin (403 M_FORBIDDEN otherwise)


@dataclass(frozen=True)
class RouteInfo:
    method: str
    path: str
    auth: Auth
    rate_limited: bool
    prefixes: tuple[str, ...]
    handler_name: str
    module: str
    # For a second form of a spec path (e.g. with an empty trailing parameter), the spec path.
    variant_of: str | None = None
    # Regular expressions for path parameters that differ from "one or more non-slashes".
    patterns: tuple[tuple[str, str], ...] = ()
    # Guest accounts may call this endpoint (spec: "Guest access", Client behaviour).
    guest: bool = False
    # Locked and expired accounts may call it too (spec: "Account locking": logging out).
    allow_locked: bool = False

    def router_paths(self) -> list[str]:
        """The paths as registered with aiohttp (with parameter patterns applied)."""
        path = self.path
        for name, pattern in self.patterns:
            path = path.replace("{" + name + "}", "{" + name + ":" + pattern + "}")
        return [prefix + path for prefix in self.prefixes]

    def full_paths(self) -> list[str]:
        return [prefix + self.path for prefix in self.prefixes]


def route(
    method: str,
    path: str,
    *,
    auth: Auth = Auth.USER,
    rate_limited: bool | None = None,
    prefixes: tuple[str, ...] = CLIENT_V3,
    variant_of: str | None = None,
    patterns: dict[str, str] | None = None,
    guest: bool = False,
    allow_locked: bool = False,
) -> Callable[[Handler], Handler]:
    """`rate_limited`: user routes take a token of the generic per-request limit (the actions
    themselves are limited by their services); server routes go through the per-origin gate
    (rc_federation). Default: false for user routes, true for server routes."""
    if rate_limited is None:
        rate_limited = auth is Auth.SERVER

    def mark(handler: Handler) -> Handler:
        handler.route_info = RouteInfo(  # type: ignore[attr-defined]
            method=method.upper(), path=path, auth=auth, rate_limited=rate_limited,
            prefixes=prefixes, handler_name=handler.__name__, module=handler.__module__,
            variant_of=variant_of, patterns=tuple(sorted((patterns or {}).items())), guest=guest,
            allow_locked=allow_locked,
        )
        return handler

    return mark


def handlers_of(modules: Iterable[ModuleType]) -> list[tuple[RouteInfo, Handler]]:
    found = []
    for module in modules:
        for _, obj in inspect.getmembers(module, inspect.iscoroutinefunction):
            info = getattr(obj, "route_info", None)
            if info is not None and obj.__module__ == module.__name__:
                found.append((info, obj))
    return found


def routes_table(modules: Iterable[ModuleType]) -> list[RouteInfo]:
    return sorted((info for info, _ in handlers_of(modules)), key=lambda i: (i.path, i.method))


def install_routes(app: web.Application, modules: Iterable[ModuleType], services: Services) -> None:
    for info, handler in handlers_of(modules):
        wrapped = _wrap(info, handler, services)
        for router_path in info.router_paths():
            app.router.add_route(info.method, router_path, wrapped, name=None)


def _wrap(info: RouteInfo, handler: Handler, services: Services) -> Handler:
    auth = info.auth
    auth_service, rate_limiter, devices = services.auth, services.rate_limiter, services.devices
    origins = services.federation_origins

    async def wrapped(request: web.Request) -> web.StreamResponse:
        if "\x00" in request.path or "\x00" in request.query_string:
            # PostgreSQL text cannot hold NUL: no ID or parameter of ours may carry one.
            raise MatrixError(400, Codes.INVALID_PARAM, "Null characters are not allowed in the path or query")
        requester = None
        if auth in (Auth.USER, Auth.OPTIONAL, Auth.ADMIN):
            token = access_token_of(request)
            if token is not None:
                requester = await auth_service.authenticate(token, request.query, allow_locked=info.allow_locked)
                if requester.is_guest and not info.guest:
                    raise MatrixError(403, Codes.GUEST_ACCESS_FORBIDDEN, "Guest access not allowed")
                # As Synapse, appservices' IPs are not tracked; an admin's "login as" token has no device.
                if requester.app_service_id is None and requester.device_id is not None:
                    devices.note_seen(requester.user_id, requester.device_id, client_ip(request),
                                      request.headers.get("User-Agent"))
            elif auth is not Auth.OPTIONAL:
                raise MatrixError(401, Codes.MISSING_TOKEN, "Missing access token")
            if auth is Auth.ADMIN and not requester.is_admin:
                raise MatrixError(403, Codes.FORBIDDEN, "You are not a server admin")
            request[REQUESTER_KEY] = requester
        elif auth is Auth.SERVER:
            origin = request[ORIGIN_KEY] = await services.request_auth.authenticate(
                request.method, request.raw_path, request.headers.getall("Authorization", []),
                await _signed_content(request),
            )
            if info.rate_limited:
                async with origins.request(origin):
                    return await handler(request)
            return await handler(request)
        if info.rate_limited and not (requester is not None and requester.is_admin) \
                and not _appservice_exempt(request, requester, auth_service):
            if requester is not None:
                await rate_limiter.check(Action.REQUEST, requester.user_id, user_id=requester.user_id)
            else:
                await rate_limiter.check(Action.REQUEST, client_ip(request))
        return await handler(request)

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


def _appservice_exempt(request: web.Request, requester: Requester | None, auth_service: Any) -> bool:
    """Appservices are not rate-limited unless their registration says `rate_limited: true`,
    and never when acting as their sender (spec: Registration, `rate_limited`). Routes that
    read no token (register, login) look at it for this alone."""
    if requester is not None:
        service = auth_service.appservice_of(requester)
        return service is not None and (not service.rate_limited or requester.user_id == service.sender)
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip() if scheme.lower() == "bearer" else request.query.get("access_token", "")
    service = auth_service.appservices.by_token(token) if token else None
    return service is not None and not service.rate_limited


def access_token_of(request: web.Request) -> str | None:
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise MatrixError(401, Codes.MISSING_TOKEN, "Invalid Authorization header")
        return value.strip()
    # Deprecated by the spec (v1.11) but still sent by older clients.
    return request.query.get("access_token")


def requester_of(request: web.Request) -> Requester:
    requester = request.get(REQUESTER_KEY)
    assert requester is not None, "route was not declared with auth=Auth.USER"
    return requester


def optional_requester_of(request: web.Request) -> Requester | None:
    return request.get(REQUESTER_KEY)


def origin_of(request: web.Request) -> str:
    """The server that signed this federation request (routes declared with auth=Auth.SERVER)."""
    origin = request.get(ORIGIN_KEY)
    assert origin is not None, "route was not declared with auth=Auth.SERVER"
    return origin


async def _signed_content(request: web.Request) -> Any:
    """A federation request's JSON body as the origin signed it; None when there is none."""
    raw = await request.read()
    if not raw.strip():
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise MatrixError(400, Codes.NOT_JSON, "Content not JSON.") from None


def client_ip(request: web.Request) -> str:
    if request.app.get(TRUST_X_FORWARDED):
        forwarded = request.headers.get("X-Forwarded-For")
        if forwarded:
            # The proxy appends the address it saw; the first entry is the original client.
            return forwarded.split(",")[0].strip()
    return request.remote or "unknown"


# --- bodies and responses ---------------------------------------------------------------

def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, content_type="application/json", headers=headers
    )


async def read_json_object(request: web.Request, *, allow_empty: bool = False) -> dict[str, Any]:
    """The request body as a JSON object; M_NOT_JSON / M_BAD_JSON otherwise.

    `allow_empty`: an absent body counts as `{}` (endpoints whose body is entirely optional).
    """
    raw = await request.read()  # raises HTTPRequestEntityTooLarge past client_max_size
    if not raw.strip():
        if allow_empty:
            return {}
        raise MatrixError(400, Codes.NOT_JSON, "Content not JSON.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise MatrixError(400, Codes.NOT_JSON, "Content not JSON.") from None
    if not isinstance(body, dict):
        raise MatrixError(400, Codes.BAD_JSON, "Content must be a JSON object.")
    if b"\\u0000" in raw:
        # PostgreSQL cannot store NUL in text or JSONB; refuse it here rather than fail later.
        raise MatrixError(400, Codes.BAD_JSON, "Null characters (\\u0000) are not allowed.")
    return body


def int_param(request: web.Request, name: str, default: int | None = None, *, minimum: int | None = None) -> int:
    """An integer query parameter: 400 M_MISSING_PARAM when absent without a default,
    M_INVALID_PARAM when not an integer or below `minimum`."""
    raw = request.query.get(name)
    if raw is None:
        if default is None:
            raise MatrixError(400, Codes.MISSING_PARAM, f"'{name}' is required")
        return default
    try:
        value = int(raw)
    except ValueError:
        raise MatrixError(400, Codes.INVALID_PARAM, f"'{name}' must be an integer") from None
    if minimum is not None and value < minimum:
        raise MatrixError(400, Codes.INVALID_PARAM, f"'{name}' must be at least {minimum}")
    return value


def bool_param(request: web.Request, name: str, default: bool | None = False) -> bool | None:
    """A `true`/`false` query parameter (as Synapse reads them), `default` when absent; 400
    M_INVALID_PARAM otherwise."""
    raw = request.query.get(name)
    if raw is None:
        return default
    if raw not in ("true", "false"):
        raise MatrixError(400, Codes.INVALID_PARAM, f"'{name}' must be true or false")
    return raw == "true"


def appservice_ts(request: web.Request, requester: Requester) -> int | None:
    """The `ts` query parameter of an appservice's send (spec: "Timestamp massaging"): the
    event's origin_server_ts, a non-negative integer JSON can carry. Others' `ts` is ignored."""
    raw = request.query.get("ts")
    if raw is None or requester.app_service_id is None:
        return None
    try:
        ts = int(raw)
    except ValueError:
        raise MatrixError(400, Codes.INVALID_PARAM, "'ts' must be an integer (milliseconds since the epoch)") from None
    if not 0 <= ts <= 2**53 - 1:
        raise MatrixError(400, Codes.INVALID_PARAM, "'ts' is out of range")
    return ts


# --- middlewares --------------------------------------------------------------------------

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, POST, PUT, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "X-Requested-With, Content-Type, Authorization, Date",
    "Access-Control-Expose-Headers": "Synapse-Trace-Id, Server, ETag",
}


# The servlet of a request no route matched (its raw path would make one series per URL).
UNMATCHED_SERVLET = "unmatched"
_request_numbers = itertools.count(1)


@web.middleware
async def observe_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost: the request's ID (GET-123) on every log line it causes, its access log line,
    and its duration in the request histogram, by servlet (the route's path template)."""
    start = perf_counter()
    method = request.method
    request_id = REQUEST_ID.set(f"{method}-{next(_request_numbers)}")
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:  # raised redirects; errors are answered further in
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = 499  # the client went away before the answer (as nginx logs it)
        raise
    finally:
        seconds = perf_counter() - start
        resource = request.match_info.route.resource
        servlet = resource.canonical if resource is not None else UNMATCHED_SERVLET
        request.app[SERVICES].metrics.observe_request(servlet, method, status, seconds)
        if access_logger.isEnabledFor(logging.INFO):
            _log_access(request, servlet, status, seconds)
        REQUEST_ID.reset(request_id)


def _log_access(request: web.Request, servlet: str, status: int, seconds: float) -> None:
    requester = request.get(REQUESTER_KEY)
    user = requester.user_id if requester is not None else request.get(ORIGIN_KEY, "-")
    ip = client_ip(request)
    path = request.raw_path.partition("?")[0]  # never the query: it may hold an access token
    access_logger.info("%s %s %s %s %d %.3fs (%s)", ip, user, request.method, path, status, seconds, servlet,
                       extra={"client_ip": ip, "user": user, "method": request.method, "path": path,
                              "servlet": servlet, "status": status, "duration_s": round(seconds, 6)})


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    # Browsers preflight every cross-origin request; answer for any path, routed or not.
    if request.method == "OPTIONS":
        return web.Response(status=204, headers=CORS_HEADERS)
    response = await handler(request)
    response.headers.update(CORS_HEADERS)
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except MatrixError as err:
        return _error_response(err.status, err.to_json(), err)
    except web.HTTPRequestEntityTooLarge:
        return _error_response(413, {"errcode": Codes.TOO_LARGE, "error": "Request body too large"})
    except web.HTTPMethodNotAllowed:
        return _error_response(405, {"errcode": Codes.UNRECOGNIZED, "error": "Unrecognized request method"})
    except web.HTTPNotFound:
        return _error_response(404, {"errcode": Codes.UNRECOGNIZED, "error": "Unrecognized request"})
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error_response(exc.status, {"errcode": Codes.UNKNOWN, "error": exc.reason})
    except Exception:
        logger.exception("error handling %s %s", request.method, request.path)
        return _error_response(500, {"errcode": Codes.UNKNOWN, "error": "Internal server error"})


def _error_response(status: int, body: dict[str, Any], err: MatrixError | None = None) -> web.Response:
    headers = None
    if err is not None and err.errcode == Codes.LIMIT_EXCEEDED and "retry_after_ms" in err.extra:
        # Seconds, rounded up (RFC 9110 wants an integer; a client retrying early fails again).
        headers = {"Retry-After": str(math.ceil(err.extra["retry_after_ms"] / 1000))}
    return json_response(body, status=status, headers=headers)


@web.middleware
async def null_character_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """PostgreSQL text cannot hold NUL: a path or query parameter carrying one (%00) is refused
    here, as no Matrix identifier or token contains it, rather than failing in a query (500)."""
    if "\x00" in request.path or any("\x00" in key or "\x00" in value for key, value in request.query.items()):
        raise MatrixError(400, Codes.INVALID_PARAM, "Null characters are not allowed in the path or the query")
    return await handler(request)


MIDDLEWARES = [observe_middleware, cors_middleware, error_middleware, null_character_middleware]
