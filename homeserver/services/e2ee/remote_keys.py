"""Keys of users on other servers: /keys/query and /keys/claim asked of their homeservers.

A client's request naming users of several servers becomes one federation request per server
(`POST /_matrix/federation/v1/user/keys/query` or `/user/keys/claim`), all sent at once and
bounded by the request's `timeout`. A server that fails to answer in time, or at all, goes in
`failures` as Synapse reports it (`{"status": ..., "message": ...}`); the others' answers are
merged. A peer may only speak for its own users: whatever it says about users we did not ask
it about is dropped, as are entries whose `user_id`/`device_id` do not match where they are.

Nothing is cached here: every query is live. `remote_devices.CachedRemoteKeys` puts the
device lists of users we share a room with in front of it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from federation.client import DeniedError, FederationClient, FederationError, RemoteError

logger = logging.getLogger(__name__)

QUERY_PATH = "/_matrix/federation/v1/user/keys/query"
CLAIM_PATH = "/_matrix/federation/v1/user/keys/claim"
DEFAULT_TIMEOUT_MS = 10_000  # the spec's default for /keys/query and /keys/claim
MAX_TIMEOUT_MS = 60_000

# server -> that server's answer (a JSON object), and server -> failure
Answers = dict[str, dict[str, Any]]
Failures = dict[str, dict[str, Any]]


class RemoteKeys:
    def __init__(self, client: FederationClient) -> None:
        self._client = client

    async def query(self, wanted: Mapping[str, Mapping[str, list[str]]],
                    timeout_ms: int) -> tuple[dict[str, Any], Failures]:
        """`wanted`: server -> {user_id: [device_id, ...]}. Returns the merged answer
        ({"device_keys", "master_keys", "self_signing_keys"}) and the failures."""
        answers, failures = await self._ask_all(
            {server: {"device_keys": {u: list(d) for u, d in users.items()}} for server, users in wanted.items()},
            QUERY_PATH, timeout_ms)
        merged: dict[str, Any] = {"device_keys": {}, "master_keys": {}, "self_signing_keys": {}}
        for server, answer in answers.items():
            for user_id in wanted[server]:
                devices = _object(_object(answer.get("device_keys")).get(user_id))
                merged["device_keys"][user_id] = {
                    device_id: keys for device_id, keys in devices.items()
                    if isinstance(keys, dict) and keys.get("user_id") == user_id and keys.get("device_id") == device_id
                }
                for field in ("master_keys", "self_signing_keys"):
                    key = _object(answer.get(field)).get(user_id)
                    if isinstance(key, dict) and key.get("user_id") == user_id:
                        merged[field][user_id] = key
        return merged, failures

    async def claim(self, wanted: Mapping[str, Mapping[str, Mapping[str, str]]],
                    timeout_ms: int) -> tuple[dict[str, Any], Failures]:
        """`wanted`: server -> {user_id: {device_id: algorithm}}. Returns the claimed keys
        ({user_id: {device_id: {"algorithm:key_id": key}}}) and the failures."""
        answers, failures = await self._ask_all(
            {server: {"one_time_keys": {u: dict(d) for u, d in users.items()}} for server, users in wanted.items()},
            CLAIM_PATH, timeout_ms)
        claimed: dict[str, Any] = {}
        for server, answer in answers.items():
            for user_id, devices_wanted in wanted[server].items():
                devices = _object(_object(answer.get("one_time_keys")).get(user_id))
                keys = {d: k for d, k in devices.items() if d in devices_wanted and isinstance(k, dict)}
                if keys:
                    claimed[user_id] = keys
        return claimed, failures

    async def _ask_all(self, bodies: Mapping[str, dict[str, Any]], path: str,
                       timeout_ms: int) -> tuple[Answers, Failures]:
        """POST each body to its server, all at once; every request ends by `timeout_ms`."""
        servers = list(bodies)
        outcomes = await asyncio.gather(*(
            _bounded(lambda s=server: self._client.post_json(s, path, content=bodies[s], timeout_ms=timeout_ms),
                     timeout_ms)
            for server in servers
        ), return_exceptions=True)
        answers: Answers = {}
        failures: Failures = {}
        for server, outcome in zip(servers, outcomes):
            if isinstance(outcome, dict):
                answers[server] = outcome
            elif isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
                raise outcome  # cancellation and the like are not a server's failure
            else:
                failures[server] = _failure(server, outcome)
        return answers, failures


def timeout_of(body: Mapping[str, Any]) -> int:
    """The request's `timeout` (ms), defaulted as the spec says and bounded; junk means the default."""
    value = body.get("timeout", DEFAULT_TIMEOUT_MS)
    if isinstance(value, bool) or not isinstance(value, int):
        return DEFAULT_TIMEOUT_MS
    return max(0, min(value, MAX_TIMEOUT_MS))


async def _bounded(call: Callable[[], Awaitable[Any]], timeout_ms: int) -> Any:
    # The client's own timeout covers the HTTP exchange; this one covers discovery too.
    return await asyncio.wait_for(call(), timeout_ms / 1000)


def _failure(server: str, outcome: Any) -> dict[str, Any]:
    """What `failures` says about a server, in Synapse's words (clients only test presence)."""
    logger.info("key request to %s failed: %s", server, outcome)
    if isinstance(outcome, RemoteError):
        return {"status": outcome.status, "message": str(outcome)}
    if isinstance(outcome, DeniedError):
        return {"status": 403, "message": "Federation Denied"}
    if isinstance(outcome, (asyncio.TimeoutError, TimeoutError)):
        return {"status": 503, "message": f"{server}: timed out"}
    if isinstance(outcome, FederationError):
        return {"status": 503, "message": str(outcome)}
    if isinstance(outcome, Exception):
        logger.warning("key request to %s: unexpected error", server, exc_info=outcome)
        return {"status": 503, "message": f"{server}: {type(outcome).__name__}"}
    return {"status": 503, "message": f"{server}: the answer is not a JSON object"}


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
