"""Our HTTP requests to application services (spec: "Homeserver -> Application Service API").

Every request carries `Authorization: Bearer <hs_token>`. Appservices usually listen on
loopback or a private network, so, unlike federation, no address filter applies: their URLs
come from the operator's registration files. TLS is checked against the system's CAs (and
SSL_CERT_FILE). One aiohttp session, opened on first use, closed by `close()`.

As Synapse, only the `/_matrix/app/v1` paths are used (the legacy unprefixed ones are not).
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from typing import Any

import aiohttp
import orjson

from homeserver.core.appservices import AppService

logger = logging.getLogger(__name__)

PREFIX = "/_matrix/app/v1"
USER_AGENT = "ChatGO"
_MAX_ERROR_BODY = 4096


class AppServiceError(Exception):
    """A request to an appservice that did not succeed."""


class AppServiceUnreachable(AppServiceError):
    """No connection (refused, DNS, TLS...)."""


class AppServiceTimeout(AppServiceError):
    """No answer within appservice.request_timeout_ms."""


class AppServiceBadJson(AppServiceError):
    """A 2xx answer whose body is not JSON."""


class AppServiceBadStatus(AppServiceError):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body


class AppServiceClient:
    def __init__(self, timeout_ms: int) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_ms / 1000)
        self._session: aiohttp.ClientSession | None = None

    async def push(self, service: AppService, txn_id: int, body: dict[str, Any]) -> None:
        """PUT /transactions/{txnId}; returns when the appservice answered 2xx."""
        await self._request("PUT", service, f"/transactions/{txn_id}", body)

    async def query_user(self, service: AppService, user_id: str) -> bool:
        """GET /users/{userId}: True when the appservice says the user exists (it has created it)."""
        return await self._query(service, "/users/" + urllib.parse.quote(user_id, safe=""))

    async def query_alias(self, service: AppService, alias: str) -> bool:
        """GET /rooms/{roomAlias}: True when the appservice says it created the alias."""
        return await self._query(service, "/rooms/" + urllib.parse.quote(alias, safe=""))

    async def ping(self, service: AppService, transaction_id: str | None) -> None:
        body = {"transaction_id": transaction_id} if transaction_id is not None else {}
        await self._request("POST", service, "/ping", body)

    async def get_json(self, service: AppService, path: str, query: list[tuple[str, str]] | None = None) -> Any:
        """GET a path under /_matrix/app/v1 and its JSON answer (third-party lookups);
        AppServiceBadJson when the answer is not JSON."""
        text = await self._request("GET", service, path, query=query)
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            raise AppServiceBadJson(f"{service.url}{PREFIX}{path} did not answer JSON") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- internals ---------------------------------------------------------------------------

    async def _query(self, service: AppService, path: str) -> bool:
        if service.url is None:
            return False
        try:
            await self._request("GET", service, path)
            return True
        except AppServiceBadStatus as err:
            if err.status != 404:
                logger.warning("query %s to appservice %s: HTTP %d", path, service.id, err.status)
        except AppServiceError as err:
            logger.warning("query %s to appservice %s failed: %s", path, service.id, err)
        return False

    async def _request(self, method: str, service: AppService, path: str, body: dict[str, Any] | None = None, *,
                       query: list[tuple[str, str]] | None = None) -> str:
        """The answer's body; AppServiceError unless the appservice answered 2xx."""
        assert service.url is not None, "an appservice without a URL gets no requests"
        headers = {"Authorization": f"Bearer {service.hs_token}", "User-Agent": USER_AGENT}
        data = None
        if body is not None:
            data = orjson.dumps(body)
            headers["Content-Type"] = "application/json"
        try:
            async with self._http().request(method, service.url + PREFIX + path, data=data, headers=headers,
                                            params=query) as resp:
                text = await resp.text(errors="replace")
                if not 200 <= resp.status < 300:
                    raise AppServiceBadStatus(resp.status, text[:_MAX_ERROR_BODY])
                return text
        except asyncio.TimeoutError:
            raise AppServiceTimeout(f"no answer from {service.url} within {self._timeout.total:g} s") from None
        except aiohttp.ClientError as err:
            raise AppServiceUnreachable(f"{type(err).__name__}: {err}") from None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session
