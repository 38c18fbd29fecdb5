"""Server signing keys: ours (`LocalKeys`) and everybody else's (`Keyring`).

`Keyring.verify_json_for_server(server_name, obj, minimum_valid_until_ts)` is what request
authentication and event checks call: it finds the server's keys named in the object's
signatures and verifies them, fetching keys it lacks. Keys come from, in order: our own keys
for our own name; the cache in PostgreSQL (storage.server_keys), where each key is usable up
to its `valid_until_ts` (a response's validity capped at 7 days after receipt, or an old
key's `expired_ts`); the server itself (`GET /_matrix/key/v2/server`, self-signature
checked); and then the notaries of `federation.trusted_key_servers`
(`POST /_matrix/key/v2/query`, the notary's signature checked too). Concurrent look-ups of one
server share one fetch, and a fetch that did not help is not repeated for a while, so forged
requests cannot make us hammer a server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from signedjson.sign import SignatureVerifyException, signature_ids, verify_signed_json

from federation.client import FederationClient, FederationError
from homeserver.config import FederationConfig, TrustedKeyServerConfig
from homeserver.core.server_keys import InvalidKeyResponse, OldKey, ServerKey, check_key_response, key_response
from homeserver.core.signing import InvalidSignature
from storage.server_keys import KeyResponseRow, ServerKeyStore

logger = logging.getLogger(__name__)

KEY_SERVER_PATH = "/_matrix/key/v2/server"
KEY_QUERY_PATH = "/_matrix/key/v2/query"
# A fetch that did not find what was asked is not repeated for this long (per server).
REFETCH_INTERVAL_MS = 60_000
KEY_FETCH_TIMEOUT_MS = 30_000
_FOREVER = 2**62
MEMORY_CACHE_SIZE = 10_000


class Clock(Protocol):
    def now_ms(self) -> int: ...


class LocalKeys:
    """Our signing key, our old keys, and the key response we publish. The response is
    valid for `key_refresh_interval_ms` and made again once less than half of that is left."""

    def __init__(self, server_name: str, signing_key: Any, config: FederationConfig, clock: Clock) -> None:
        self.server_name = server_name
        self.signing_key = signing_key
        self.key_id = f"{signing_key.alg}:{signing_key.version}"
        self._old = [OldKey(k.key_id, k.key, k.expired_ts) for k in config.old_signing_keys
                     if k.key_id != self.key_id]
        self._interval = config.key_refresh_interval_ms
        self._clock = clock
        self._response: dict[str, Any] | None = None

    def response(self) -> dict[str, Any]:
        now = self._clock.now_ms()
        if self._response is None or now + self._interval // 2 > self._response["valid_until_ts"]:
            self._response = key_response(self.server_name, [self.signing_key], self._old, now + self._interval)
        return self._response

    def keys(self) -> dict[str, ServerKey]:
        """Our keys as a peer would see them: the current one valid for as long as we publish
        it, the old ones until they expired."""
        response = self.response()
        keys = {self.key_id: ServerKey(self.server_name, self.key_id,
                                       response["verify_keys"][self.key_id]["key"], response["valid_until_ts"])}
        for old in self._old:
            keys[old.key_id] = ServerKey(self.server_name, old.key_id, old.key, old.expired_ts, expired=True)
        return keys


class Keyring:
    def __init__(self, store: ServerKeyStore, client: FederationClient, local: LocalKeys, clock: Clock,
                 trusted_key_servers: Sequence[TrustedKeyServerConfig] = (), *,
                 refetch_interval_ms: int = REFETCH_INTERVAL_MS) -> None:
        self._store = store
        self._client = client
        self.local = local
        self._clock = clock
        self._notaries = list(trusted_key_servers)
        self._refetch_interval = refetch_interval_ms
        self._fetching: dict[str, asyncio.Future[None]] = {}
        self._unproductive: dict[str, int] = {}  # server -> when a fetch last failed to help
        # Keys read or fetched, kept in memory: a key's validity only grows, so an entry that
        # is valid long enough needs no database round trip.
        self._memory: dict[tuple[str, str], ServerKey] = {}

    # --- verifying ------------------------------------------------------------------------

    async def verify_json_for_server(self, server_name: str, obj: dict[str, Any], minimum_valid_until_ts: int) -> None:
        """Check that `server_name` signed `obj` with a key valid at `minimum_valid_until_ts`
        (0 for room versions 1-4, which ignore key validity). Every such signature must
        verify and there must be at least one. Raises core.signing.InvalidSignature."""
        key_ids = signature_ids(obj, server_name)
        if not key_ids:
            raise InvalidSignature(f"not signed by {server_name}")
        keys = await self.get_keys(server_name, key_ids, minimum_valid_until_ts)
        _verify(obj, server_name, key_ids, keys, minimum_valid_until_ts)

    # --- finding keys ---------------------------------------------------------------------------

    async def get_keys(self, server_name: str, key_ids: Iterable[str], minimum_valid_until_ts: int = 0) -> dict[str, ServerKey]:
        """The keys of `key_ids` we know or can fetch; those still invalid at
        `minimum_valid_until_ts` after a fetch are returned too (the caller decides)."""
        key_ids = list(key_ids)
        if not key_ids:
            return {}
        if server_name == self.local.server_name:
            return {k: v for k, v in self.local.keys().items() if k in key_ids}
        remembered = {k: self._memory[(server_name, k)] for k in key_ids if (server_name, k) in self._memory}
        if _satisfies(remembered, key_ids, minimum_valid_until_ts):
            return remembered
        keys = await self._store.get_keys(server_name, key_ids)
        if not _satisfies(keys, key_ids, minimum_valid_until_ts):
            await self._fetch_once(server_name, key_ids, minimum_valid_until_ts)
            keys = await self._store.get_keys(server_name, key_ids)
        if len(self._memory) > MEMORY_CACHE_SIZE:
            self._memory.clear()
        self._memory.update({(server_name, k): key for k, key in keys.items()})
        return keys

    async def _fetch_once(self, server_name: str, key_ids: list[str], minimum_valid_until_ts: int) -> None:
        now = self._clock.now_ms()
        if now - self._unproductive.get(server_name, -self._refetch_interval) < self._refetch_interval:
            return
        pending = self._fetching.get(server_name)
        if pending is None:
            pending = asyncio.ensure_future(self._fetch(server_name, key_ids, minimum_valid_until_ts))
            self._fetching[server_name] = pending
            pending.add_done_callback(lambda _: self._fetching.pop(server_name, None))
        await asyncio.shield(pending)

    async def _fetch(self, server_name: str, key_ids: list[str], minimum_valid_until_ts: int) -> None:
        found = await self.fetch_direct(server_name)
        if not _satisfies(found, key_ids, minimum_valid_until_ts):
            for notary in self._notaries:
                if notary.server_name == server_name:
                    continue
                found = {**found, **await self._fetch_from_notary(notary, server_name, key_ids, minimum_valid_until_ts)}
                if _satisfies(found, key_ids, minimum_valid_until_ts):
                    break
        if _satisfies(found, key_ids, minimum_valid_until_ts):
            self._unproductive.pop(server_name, None)
        else:
            self._unproductive[server_name] = self._clock.now_ms()

    async def fetch_direct(self, server_name: str) -> dict[str, ServerKey]:
        """Ask the server for its keys, check and keep its answer; {} when that fails."""
        try:
            response = await self._client.get_json(server_name, KEY_SERVER_PATH, signed=False,
                                                   timeout_ms=KEY_FETCH_TIMEOUT_MS)
            keys = check_key_response(response, server_name, self._clock.now_ms())
        except (FederationError, InvalidKeyResponse) as err:
            logger.info("cannot fetch the keys of %s: %s", server_name, err)
            return {}
        await self._store.store_response(server_name, server_name, response, keys, self._clock.now_ms())
        return {k.key_id: k for k in keys}

    async def _fetch_from_notary(self, notary: TrustedKeyServerConfig, server_name: str, key_ids: list[str],
                                 minimum_valid_until_ts: int) -> dict[str, ServerKey]:
        criteria = {"minimum_valid_until_ts": minimum_valid_until_ts}
        body = {"server_keys": {server_name: {k: criteria for k in key_ids}}}
        try:
            answer = await self._client.post_json(notary.server_name, KEY_QUERY_PATH, body, signed=False,
                                                  timeout_ms=KEY_FETCH_TIMEOUT_MS)
            responses = answer["server_keys"]
            if not isinstance(responses, list):
                raise TypeError("server_keys is not a list")
        except (FederationError, KeyError, TypeError) as err:
            logger.info("notary %s could not give the keys of %s: %s", notary.server_name, server_name, err)
            return {}
        found: dict[str, ServerKey] = {}
        for response in responses:
            if not isinstance(response, dict) or response.get("server_name") != server_name:
                continue
            try:
                await self._check_notary_signature(notary, response)
                keys = check_key_response(response, server_name, self._clock.now_ms())
            except (InvalidSignature, InvalidKeyResponse) as err:
                logger.warning("notary %s gave a bad key response for %s: %s", notary.server_name, server_name, err)
                continue
            await self._store.store_response(server_name, notary.server_name, response, keys, self._clock.now_ms())
            found.update({k.key_id: k for k in keys})
        return found

    async def _check_notary_signature(self, notary: TrustedKeyServerConfig, response: dict[str, Any]) -> None:
        key_ids = signature_ids(response, notary.server_name)
        if not key_ids:
            raise InvalidSignature(f"not signed by the notary {notary.server_name}")
        now = self._clock.now_ms()
        if notary.verify_keys:
            keys = {k.key_id: ServerKey(notary.server_name, k.key_id, k.key, _FOREVER) for k in notary.verify_keys}
        else:
            # No configured keys: the notary's own, asked of it directly (never of another
            # notary, so two notaries vouching for each other cannot wait on each other).
            keys = await self._store.get_keys(notary.server_name, key_ids)
            if not _satisfies(keys, key_ids, now):
                keys = {**keys, **await self.fetch_direct(notary.server_name)}
        _verify(response, notary.server_name, key_ids, keys, now)

    # --- for notary answers ---------------------------------------------------------------------

    async def key_responses_for(self, server_name: str, wanted: Mapping[str, int | None],
                                all_minimum: int | None = None) -> list[dict[str, Any]]:
        """The signed key responses we can vouch for as a notary: our own for our name;
        otherwise the cached ones of the `wanted` key IDs, each wanted with a
        `minimum_valid_until_ts` or None (keys_query.yaml); all the server's keys when none is
        named, the freshest with `all_minimum`.

        The server is asked again when a wanted key is unknown, valid for less than its
        minimum, or, with no minimum given, expired or past half its life (keys_server.yaml);
        a key that is valid long enough is served from the cache even when the server no
        longer lists it. A stale answer beats none."""
        if server_name == self.local.server_name:
            return [self.local.response()]
        key_ids = list(wanted) or None
        rows = await self._store.get_responses(server_name, key_ids)
        if _notary_miss(rows, wanted, all_minimum, self._clock.now_ms()):
            if await self.fetch_direct(server_name):
                rows = await self._store.get_responses(server_name, key_ids)
        responses: list[dict[str, Any]] = []
        for row in rows:  # one response may list several of the keys: once in the answer
            if row.response not in responses:
                responses.append(row.response)
        return responses


def _notary_miss(rows: Sequence[KeyResponseRow], wanted: Mapping[str, int | None], all_minimum: int | None,
                 now: int) -> bool:
    """Whether the cached responses fall short of what a notary query asks (see key_responses_for)."""
    if not rows:
        return True
    best: dict[str, KeyResponseRow] = {}
    for row in rows:  # the longest-valid first
        best.setdefault(row.key_id, row)
    # All keys wanted: the freshest response decides (keys long expired must not force a fetch).
    for key_id, minimum in (wanted or {rows[0].key_id: all_minimum}).items():
        row = best.get(key_id)
        if row is None:
            return True
        if minimum is not None:
            if row.valid_until_ts < minimum:
                return True
        elif row.valid_until_ts < now or now > row.fetched_ts + (row.valid_until_ts - row.fetched_ts) // 2:
            return True
    return False


def _verify(obj: dict[str, Any], server_name: str, key_ids: list[str], keys: dict[str, ServerKey],
            minimum_valid_until_ts: int) -> None:
    usable = [keys[k] for k in key_ids if k in keys and keys[k].valid_until_ts >= minimum_valid_until_ts]
    if not usable:
        known = [k for k in key_ids if k in keys]
        reason = f"keys {known} expired before {minimum_valid_until_ts}" if known else f"no key {key_ids} found"
        raise InvalidSignature(f"cannot check the signature of {server_name}: {reason}")
    for key in usable:
        try:
            verify_signed_json(obj, server_name, key.verify_key)
        except (SignatureVerifyException, ValueError) as err:
            raise InvalidSignature(f"bad signature by {server_name} with {key.key_id}: {err}") from None


def _satisfies(found: dict[str, ServerKey], key_ids: list[str], minimum_valid_until_ts: int) -> bool:
    """Whether the wanted keys are all there and valid long enough (any key, when none is named)."""
    if not key_ids:
        return bool(found)
    return all(k in found and found[k].valid_until_ts >= minimum_valid_until_ts for k in key_ids)
