"""The federation HTTP client: JSON requests to other homeservers, signed with X-Matrix.

`FederationClient.request(method, destination, path, query=..., content=...)` resolves the
destination (federation.discovery), connects through the shared session (federation.transport:
TLS checks, IP denylist, timeouts), signs the request as the spec's "Request Authentication"
says, and returns the parsed JSON body. Failures raise a `FederationError`:
`UnreachableError` (DNS, connection, TLS, denied address, timeout), `RemoteError` (the peer
answered with an error status; it carries the peer's Matrix `errcode`/`error`), or
`BadResponseError` (a success that is not JSON, or too large). No retries or back-off here:
that is the sender's business.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import orjson
import yarl

from federation.discovery import Discovery, Route
from federation.transport import DeniedAddress, Transport, read_limited
from homeserver.core.x_matrix import sign_request
from homeserver.errors import Codes, MatrixError

logger = logging.getLogger(__name__)

# Large responses exist (room state, backfill); anything beyond this is refused.
MAX_RESPONSE_BYTES = 100 * 1024 * 1024

Query = Mapping[str, str | int | Sequence[str]]


class FederationError(Exception):
    """A request to another server failed."""

    def __init__(self, destination: str, message: str) -> None:
        super().__init__(f"{destination}: {message}")
        self.destination = destination


class UnreachableError(FederationError):
    """No answer: discovery, connection, TLS, a denied address, or a timeout."""


class DeniedError(FederationError):
    """The destination is not in federation.domain_allowlist: nothing was sent (403, as Synapse)."""


class BadResponseError(FederationError):
    """The peer answered with success but not with JSON (or with too much of it)."""


class RemoteError(FederationError):
    """The peer answered with an error status; `errcode` and `error` are its Matrix error."""

    def __init__(self, destination: str, status: int, body: Any) -> None:
        self.status = status
        self.body = body
        body_dict = body if isinstance(body, dict) else {}
        self.errcode: str | None = body_dict.get("errcode") if isinstance(body_dict.get("errcode"), str) else None
        self.error: str | None = body_dict.get("error") if isinstance(body_dict.get("error"), str) else None
        super().__init__(destination, f"HTTP {status} {self.errcode or ''} {self.error or ''}".strip())

    def to_matrix_error(self) -> MatrixError:
        """The peer's error, to pass on to a client: 400, 403 and 404 as they are; anything
        else (a 401 about our signature, a 429 about our rate, 5xx) is the peer's problem,
        not the client's, and becomes 502 with the peer's errcode."""
        status = self.status if self.status in (400, 403, 404) else 502
        return MatrixError(status, self.errcode or Codes.UNKNOWN, self.error or f"{self.destination} said HTTP {self.status}")


def is_unknown_endpoint(err: FederationError) -> bool:
    """Whether the peer does not serve the endpoint at all (rather than refusing the request):
    404 or 405 with no JSON body or M_UNRECOGNIZED, or the 400 M_UNRECOGNIZED of older
    servers. Where a newer endpoint version is unknown, the older one is tried (as Synapse)."""
    if not isinstance(err, RemoteError):
        return False
    if err.status in (404, 405):
        return not isinstance(err.body, dict) or err.errcode == Codes.UNRECOGNIZED
    return err.status == 400 and err.errcode == Codes.UNRECOGNIZED


@dataclass(frozen=True, slots=True)
class MediaStream:
    """Media being downloaded: its Content-Type and Content-Disposition, and either its bytes
    as they arrive (`chunks`, raising FederationError if the transfer breaks) or, for a
    multipart answer whose content part is a redirect, the `location` to fetch them from."""
    content_type: str
    disposition: str | None
    location: str | None
    chunks: AsyncIterator[bytes]


def client_error(err: FederationError) -> MatrixError:
    """What a client is told when a request it caused to another server failed: the peer's
    own 400/403/404, 403 for a server we may not federate with, 502 otherwise."""
    if isinstance(err, RemoteError):
        return err.to_matrix_error()
    if isinstance(err, DeniedError):
        return MatrixError(403, Codes.FORBIDDEN, str(err))
    return MatrixError(502, Codes.UNKNOWN, f"Could not reach {err.destination}: {err}")


def path(template: str, *segments: str) -> str:
    """A request path with each `{}` replaced by a percent-encoded segment:
    `path("/_matrix/federation/v1/send/{}", txn_id)`."""
    return template.format(*(quote(s, safe="") for s in segments))


class FederationClient:
    def __init__(self, transport: Transport, discovery: Discovery, server_name: str, signing_key: Any,
                 domain_allowlist: Iterable[str] | None = None) -> None:
        self._allowed = frozenset(domain_allowlist) if domain_allowlist is not None else None
        self._transport = transport
        self._discovery = discovery
        self.server_name = server_name
        self._signing_key = signing_key

    async def close(self) -> None:
        """Close the shared session (at shutdown)."""
        await self._transport.close()

    async def get_json(self, destination: str, path: str, query: Query | None = None, **kw: Any) -> Any:
        return await self.request("GET", destination, path, query=query, **kw)

    async def put_json(self, destination: str, path: str, content: Any, query: Query | None = None, **kw: Any) -> Any:
        return await self.request("PUT", destination, path, query=query, content=content, **kw)

    async def post_json(self, destination: str, path: str, content: Any, query: Query | None = None, **kw: Any) -> Any:
        return await self.request("POST", destination, path, query=query, content=content, **kw)

    async def request(self, method: str, destination: str, path: str, *, query: Query | None = None,
                      content: Any = None, signed: bool = True, timeout_ms: int | None = None) -> Any:
        """Send one request and return the peer's JSON answer. `path` starts with `/_matrix/`
        and is already percent-encoded (see `path()`); `signed=False` only for the key API."""
        if self._allowed is not None and destination not in self._allowed:
            raise DeniedError(destination, "federation with this server is not allowed (federation.domain_allowlist)")
        method = method.upper()
        uri = path + ("?" + urlencode(query, doseq=True, quote_via=quote) if query else "")
        if content is None and method in ("PUT", "POST"):
            content = {}  # the spec: POST and PUT always carry a (possibly empty) JSON object
        headers = {"Accept": "application/json"}
        if signed:
            headers["Authorization"] = sign_request(method, uri, self.server_name, destination,
                                                    self._signing_key, content)
        body = orjson.dumps(content) if content is not None else None
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            routes = await self._discovery.resolve(destination)
        except ValueError as err:
            raise UnreachableError(destination, str(err)) from None
        timeout = aiohttp.ClientTimeout(total=timeout_ms / 1000) if timeout_ms is not None else None
        last_error: Exception | None = None
        for route in routes:
            try:
                return await self._send(route, method, uri, headers, body, timeout)
            except aiohttp.ClientConnectorError as err:  # nothing sent: the next route may work
                last_error = err
                logger.debug("%s via %s:%d: %s", destination, route.host, route.port, err)
        raise UnreachableError(destination, _describe(last_error))

    @contextlib.asynccontextmanager
    async def get_media(self, destination: str, path: str, *, query: Query | None = None, multipart: bool = True,
                        timeout_ms: int | None = None) -> AsyncIterator[MediaStream]:
        """A signed GET of media, streamed. `multipart`: the answer is the federation media
        endpoints' multipart/mixed (JSON metadata, then the content part), unpacked here;
        otherwise the whole body is the media (the legacy download endpoint). Errors as
        `request`. Redirects are not followed."""
        if self._allowed is not None and destination not in self._allowed:
            raise DeniedError(destination, "federation with this server is not allowed (federation.domain_allowlist)")
        uri = path + ("?" + urlencode(query, doseq=True, quote_via=quote) if query else "")
        headers = {"Authorization": sign_request("GET", uri, self.server_name, destination, self._signing_key, None)}
        try:
            routes = await self._discovery.resolve(destination)
        except ValueError as err:
            raise UnreachableError(destination, str(err)) from None
        last_error: Exception | None = None
        for route in routes:
            kwargs: dict[str, Any] = {"headers": {**headers, "Host": route.host_header}, "allow_redirects": False}
            if route.server_hostname is not None:
                kwargs["server_hostname"] = route.server_hostname
            try:
                resp = await self._open(destination, yarl.URL(route.base_url + uri, encoded=True), kwargs, timeout_ms)
            except aiohttp.ClientConnectorError as err:  # nothing sent: the next route may work
                last_error = err
                continue
            try:
                yield await _unpack_media(destination, resp, multipart)
            finally:
                resp.close()
            return
        raise UnreachableError(destination, _describe(last_error))

    @contextlib.asynccontextmanager
    async def get_url_media(self, url: str, *, timeout_ms: int | None = None) -> AsyncIterator[MediaStream]:
        """A plain, unsigned GET of an http(s) URL (where a peer redirects us for media), streamed
        through the same transport: the IP range filter and TLS checks apply, to redirects too."""
        parsed = yarl.URL(url)
        if parsed.scheme not in ("https", "http") or not parsed.host:
            raise BadResponseError(url, "not an http(s) URL")
        try:
            resp = await self._open(parsed.host, parsed, {"allow_redirects": True, "max_redirects": 5}, timeout_ms)
        except aiohttp.ClientConnectorError as err:
            raise UnreachableError(parsed.host, _describe(err)) from None
        try:
            yield await _unpack_media(parsed.host, resp, multipart=False)
        finally:
            resp.close()

    async def _open(self, destination: str, url: yarl.URL, kwargs: dict[str, Any],
                    timeout_ms: int | None) -> aiohttp.ClientResponse:
        """Send a GET and return the response once its headers are in (2xx only: an error status
        raises RemoteError with the peer's Matrix error)."""
        if timeout_ms is not None:
            kwargs["timeout"] = aiohttp.ClientTimeout(total=timeout_ms / 1000)
        try:
            resp = await self._transport.session.get(url, **kwargs)
        except aiohttp.ClientConnectorError:
            raise
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as err:
            raise UnreachableError(destination, _describe(err)) from None
        if 200 <= resp.status < 300:
            return resp
        try:
            raw = await read_limited(resp, 64 * 1024)  # as much as a Matrix error needs
            data = orjson.loads(raw) if raw else None
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, orjson.JSONDecodeError):
            data = None
        finally:
            resp.close()
        raise RemoteError(destination, resp.status, data)

    async def _send(self, route: Route, method: str, uri: str, headers: dict[str, str], body: bytes | None,
                    timeout: aiohttp.ClientTimeout | None) -> Any:
        destination = route.server_name
        kwargs: dict[str, Any] = {"headers": {**headers, "Host": route.host_header}, "data": body,
                                  "allow_redirects": False}
        if route.server_hostname is not None:
            kwargs["server_hostname"] = route.server_hostname
        if timeout is not None:
            kwargs["timeout"] = timeout
        url = yarl.URL(route.base_url + uri, encoded=True)
        try:
            async with self._transport.session.request(method, url, **kwargs) as resp:
                raw = await read_limited(resp, MAX_RESPONSE_BYTES)
                status = resp.status
        except aiohttp.ClientConnectorError:
            raise
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as err:
            raise UnreachableError(destination, _describe(err)) from None
        if raw is None:
            raise BadResponseError(destination, f"response larger than {MAX_RESPONSE_BYTES} bytes")
        try:
            data = orjson.loads(raw) if raw.strip() else None
        except orjson.JSONDecodeError:
            data = None
            if 200 <= status < 300:
                raise BadResponseError(destination, f"HTTP {status} with a body that is not JSON") from None
        if not 200 <= status < 300:
            raise RemoteError(destination, status, data)
        return data


_MEDIA_CHUNK_BYTES = 256 * 1024


async def _unpack_media(destination: str, resp: aiohttp.ClientResponse, multipart: bool) -> MediaStream:
    if not multipart:
        return MediaStream(resp.headers.get("Content-Type", ""), resp.headers.get("Content-Disposition"), None,
                           _guarded(destination, resp.content.iter_chunked(_MEDIA_CHUNK_BYTES)))
    content_type = resp.headers.get("Content-Type", "")
    if content_type.split(";", 1)[0].strip().lower() != "multipart/mixed":
        raise BadResponseError(destination, f"media answer is {content_type!r}, not multipart/mixed")
    try:
        reader = aiohttp.MultipartReader(resp.headers, resp.content)
        metadata = await reader.next()
        if not isinstance(metadata, aiohttp.BodyPartReader):
            raise ValueError("no metadata part")
        while await metadata.read_chunk(64 * 1024):  # `{}` so far: nothing to keep
            pass
        part = await reader.next()
        if not isinstance(part, aiohttp.BodyPartReader):
            raise ValueError("no content part")
    except (ValueError, AssertionError) as err:
        raise BadResponseError(destination, f"malformed multipart media answer: {err}") from None
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as err:
        raise UnreachableError(destination, _describe(err)) from None
    location = part.headers.get("Location")
    return MediaStream(part.headers.get("Content-Type", ""), part.headers.get("Content-Disposition"),
                       location or None, _guarded(destination, _part_chunks(part)))


async def _part_chunks(part: aiohttp.BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(_MEDIA_CHUNK_BYTES):
        yield chunk


async def _guarded(destination: str, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The chunks, with a broken transfer reported as a FederationError."""
    try:
        async for chunk in chunks:
            yield chunk
    except ValueError as err:
        raise BadResponseError(destination, f"malformed multipart media answer: {err}") from None
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as err:
        raise UnreachableError(destination, _describe(err)) from None


def _describe(err: BaseException | None) -> str:
    if err is None:
        return "no route"
    if isinstance(err, asyncio.TimeoutError):
        return "timed out"
    if isinstance(err, aiohttp.ClientConnectorCertificateError):
        return f"TLS certificate not accepted: {err.certificate_error}"
    if isinstance(err, aiohttp.ClientConnectorError):
        cause = err.os_error
        if isinstance(cause, DeniedAddress) or "denied by federation.ip_range_denylist" in str(cause):
            return f"refused to connect to {err.host}: {cause}"
        return f"cannot connect to {err.host}:{err.port}: {cause}"
    return f"{type(err).__name__}: {err}"
