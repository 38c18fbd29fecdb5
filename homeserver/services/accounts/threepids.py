"""Third-party identifiers on identity servers (spec: client-server "Adding Account Administrative
Contact Information", and the identity service API's /3pid/bind and /3pid/unbind).

A user who validated an e-mail address with an identity server asks us to bind it to their
Matrix ID there (POST /account/3pid/bind): we call the identity server's /3pid/bind with their
identity access token and remember where it was bound. Unbinding (POST /account/3pid/unbind or
/account/3pid/delete) and deactivating the account ask those identity servers (or the one
named) to forget the binding, with a request signed by our server key (X-Matrix), as the
identity service API requires for /3pid/unbind.

The calls go through the federation transport's session: the same TLS trust and the same IP
range filter as federation, so a user cannot make us call a private address.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

import aiohttp
import orjson

from federation.transport import Transport
from homeserver.core.ids import is_valid_server_name
from homeserver.core.x_matrix import sign_request
from homeserver.errors import Codes, MatrixError
from homeserver.services.accounts.email import (
    THREEPID_AUTH_FAILED, THREEPID_IN_USE, EmailValidationService, canonical_email,
)
from homeserver.services.accounts.uia import UIAService
from homeserver.services.auth import Requester
from homeserver.services.clock import Clock
from storage.threepids import ThreepidBindingStore, UserThreepid, UserThreepidStore

logger = logging.getLogger(__name__)

BIND_PATH = "/_matrix/identity/v2/3pid/bind"
UNBIND_PATH = "/_matrix/identity/v2/3pid/unbind"


class ThreepidService:
    def __init__(self, bindings: ThreepidBindingStore, transport: Transport, server_name: str,
                 signing_key: Any, owners: UserThreepidStore | None = None,
                 email: EmailValidationService | None = None, uia: UIAService | None = None,
                 clock: Clock | None = None, allowed_servers: Iterable[str] | None = None) -> None:
        self._allowed = frozenset(allowed_servers) if allowed_servers is not None else None
        self._owners = owners
        self._email = email
        self._uia = uia
        self._clock = clock
        self._bindings = bindings
        self._transport = transport
        self._server_name = server_name
        self._signing_key = signing_key

    def _check_id_server(self, id_server: str) -> None:
        # A host name with an optional port, nothing more (no scheme, path or credentials).
        if not is_valid_server_name(id_server):
            raise MatrixError(400, Codes.INVALID_PARAM, "'id_server' must be a host name, with an optional port")
        if self._allowed is not None and id_server not in self._allowed:
            raise MatrixError(400, Codes.SERVER_NOT_TRUSTED,
                              "This identity server is not trusted (identity.server_allowlist)")

    async def bind(self, requester: Requester, body: dict[str, Any]) -> None:
        """POST /account/3pid/bind."""
        sid, secret, id_server, token = (_string(body, k) for k in ("sid", "client_secret", "id_server",
                                                                     "id_access_token"))
        self._check_id_server(id_server)
        answer = await self._call("POST", id_server, BIND_PATH,
                                  {"sid": sid, "client_secret": secret, "mxid": requester.user_id},
                                  headers={"Authorization": f"Bearer {token}"})
        if answer is None:
            # The client named it: an unreachable identity server is the request's problem.
            raise MatrixError(400, Codes.UNKNOWN, f"Could not reach the identity server {id_server}")
        if answer[0] != 200 or not isinstance(answer[1], dict):
            raise MatrixError(400, Codes.UNKNOWN, f"The identity server did not bind the 3PID (HTTP {answer[0]})")
        medium, address = answer[1].get("medium"), answer[1].get("address")
        if not isinstance(medium, str) or not isinstance(address, str):
            raise MatrixError(502, Codes.UNKNOWN, "The identity server's answer names no 3PID")
        await self._bindings.add(requester.user_id, medium, address, id_server)

    # --- the account's own 3PIDs (validated by mail) -------------------------------------------

    async def account_threepids(self, user_id: str) -> dict[str, Any]:
        """GET /account/3pid."""
        rows = await self._owners.of_user(user_id) if self._owners else []
        return {"threepids": [{"medium": r.medium, "address": r.address, "validated_at": r.validated_ts,
                               "added_at": r.added_ts} for r in rows]}

    async def add_with_creds(self, requester: Requester, body: dict[str, Any]) -> None:
        """POST /account/3pid (deprecated; no UIA, as Synapse): `three_pid_creds` of a
        validated session."""
        creds = body.get("three_pid_creds", body.get("threePidCreds"))
        await self._add(requester.user_id, creds)

    async def add(self, requester: Requester, body: dict[str, Any]) -> None:
        """POST /account/3pid/add: UIA, then the validated session's 3PID."""
        assert self._uia is not None
        creds = {"sid": body.get("sid"), "client_secret": body.get("client_secret")}
        result = await self._uia.authenticate(body.get("auth"), operation="add_threepid",
                                              flows=self._uia.user_flows(), user_id=requester.user_id)
        await self._add(requester.user_id, creds)
        await self._uia.finish(result.session_id)

    async def add_validated(self, user_id: str, medium: str, address: str, validated_ts: int) -> None:
        """Give the account a 3PID that was just proven (registration with an e-mail address)."""
        if self._owners is None or self._clock is None:
            return
        if not await self._owners.add(UserThreepid(user_id, medium, address, validated_ts, self._clock.now_ms())):
            raise MatrixError(400, THREEPID_IN_USE, f"This {medium} is already in use")

    async def set_account_threepids(self, user_id: str, threepids: list[tuple[str, str]]) -> None:
        """An admin replaces the account's 3PIDs (PUT /_synapse/admin/v2/users): the new ones
        count as validated now; the dropped ones are also unbound from identity servers."""
        assert self._owners is not None and self._clock is not None
        wanted = {(medium, canonical_email(address) if medium == "email" else address) for medium, address in threepids}
        for medium, address in wanted:
            if (owner := await self._owners.owner(medium, address)) not in (None, user_id):
                raise MatrixError(400, THREEPID_IN_USE, f"{address} belongs to another account")
        current = {(r.medium, r.address) for r in await self._owners.of_user(user_id)}
        bindings = await self._bindings.of_user(user_id)
        for medium, address in current - wanted:
            await self._owners.remove(user_id, medium, address)
            for b in bindings:
                if (b.medium, b.address) == (medium, address):
                    await self._unbind_one(user_id, medium, address, b.id_server)
        now = self._clock.now_ms()
        for medium, address in sorted(wanted - current):
            await self.add_validated(user_id, medium, address, now)

    async def owner(self, medium: str, address: str) -> str | None:
        """The user a 3PID belongs to (logging in with it)."""
        if self._owners is None:
            return None
        return await self._owners.owner(medium, canonical_email(address) if medium == "email" else address)

    async def _add(self, user_id: str, creds: Any) -> None:
        found = await self._email.validated(creds) if self._email else None
        if found is None:
            raise MatrixError(400, THREEPID_AUTH_FAILED, "No validated 3PID session found")
        await self.add_validated(user_id, *found)

    # --- identity servers ----------------------------------------------------------------------

    async def unbind(self, requester: Requester, body: dict[str, Any], *, delete: bool = False) -> str:
        """POST /account/3pid/unbind and (`delete`) /account/3pid/delete, which also takes the
        3PID off the account: the `id_server_unbind_result`."""
        medium, address = _string(body, "medium"), _string(body, "address")
        if delete and self._owners is not None:
            await self._owners.remove(requester.user_id, medium, canonical_email(address) if medium == "email" else address)
        id_server = body.get("id_server")
        if id_server is not None:
            if not isinstance(id_server, str):
                raise MatrixError(400, Codes.BAD_JSON, "'id_server' must be a string")
            self._check_id_server(id_server)
            servers = [id_server]
        else:
            servers = [b.id_server for b in await self._bindings.of_user(requester.user_id)
                       if (b.medium, b.address) == (medium, address)]
        if not servers:
            return "no-support"  # as Synapse: no identity server to ask
        results = [await self._unbind_one(requester.user_id, medium, address, s) for s in servers]
        return "success" if all(results) else "no-support"

    async def unbind_all(self, user_id: str) -> str:
        """Deactivation: forget every binding we made, and the account's 3PIDs; the
        `id_server_unbind_result`."""
        if self._owners is not None:
            await self._owners.remove_all(user_id)
        results = [await self._unbind_one(user_id, b.medium, b.address, b.id_server)
                   for b in await self._bindings.of_user(user_id)]
        return "success" if all(results) else "no-support"

    async def close(self) -> None:
        await self._transport.close()

    async def _unbind_one(self, user_id: str, medium: str, address: str, id_server: str) -> bool:
        content = {"mxid": user_id, "threepid": {"medium": medium, "address": address}}
        auth = sign_request("POST", UNBIND_PATH, self._server_name, id_server, self._signing_key, content)
        answer = await self._call("POST", id_server, UNBIND_PATH, content, headers={"Authorization": auth})
        await self._bindings.remove(user_id, medium, address, id_server)
        # An unreachable or failing server, or one that answers 400, 404 or 501 (as Synapse
        # reads them: it cannot, or need not, unbind): "no-support" for the client.
        return answer is not None and 200 <= answer[0] < 300

    async def _call(self, method: str, id_server: str, path: str, content: Any,
                    headers: dict[str, str]) -> tuple[int, Any] | None:
        """(status, JSON answer) from the identity server, or None when it cannot be reached."""
        url = f"https://{id_server}{path}"
        try:
            async with self._transport.session.request(
                method, url, data=orjson.dumps(content),
                headers={**headers, "Content-Type": "application/json"},
            ) as resp:
                raw = await resp.read()
                try:
                    return resp.status, orjson.loads(raw) if raw else None
                except orjson.JSONDecodeError:
                    return resp.status, None
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as err:
            logger.info("identity server %s unreachable: %s", id_server, err)
            return None


def _string(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise MatrixError(400, Codes.MISSING_PARAM if value is None else Codes.BAD_JSON,
                          f"'{key}' must be a non-empty string")
    return value

