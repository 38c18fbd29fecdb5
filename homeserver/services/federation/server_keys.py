"""Publishing our server keys and answering notary queries (spec: "Retrieving server keys").

Use cases: `GET /_matrix/key/v2/server` returns our signed key response; `GET|POST
/_matrix/key/v2/query` return the key responses we hold (or fetch) for other servers, each
with its server's own signature kept and ours added as the notary. Servers we cannot reach and
hold nothing for are left out (an empty list, as the spec says).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from federation.keys import Clock, Keyring
from homeserver.core.ids import is_valid_server_name
from homeserver.core.signing import sign_object
from homeserver.errors import Codes, MatrixError

# One batch query may name this many servers at most.
MAX_SERVERS_PER_QUERY = 100


class ServerKeyService:
    def __init__(self, keyring: Keyring, clock: Clock) -> None:
        self._keyring = keyring
        self._local = keyring.local
        self._clock = clock

    def own_keys(self) -> dict[str, Any]:
        return self._local.response()

    async def query(self, server_name: str, key_id: str | None, minimum_valid_until_ts: int | None) -> dict[str, Any]:
        """GET /query/{serverName}[/{keyId}]: the server's keys, signed by us as notary. The
        key ID form is the deprecated one older servers (and sytest) still use."""
        if not is_valid_server_name(server_name):
            return {"server_keys": []}
        wanted = {key_id: minimum_valid_until_ts} if key_id else {}
        return {"server_keys": await self._vouch(server_name, wanted, minimum_valid_until_ts)}

    async def query_batch(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST /query: `{"server_keys": {server: {key_id: {"minimum_valid_until_ts"}}}}`. A key
        whose criteria name no minimum is wanted valid now (keys_query.yaml); a server with
        no key IDs is asked for all its keys."""
        criteria = body.get("server_keys")
        if not isinstance(criteria, Mapping) or not all(isinstance(v, Mapping) for v in criteria.values()):
            raise MatrixError(400, Codes.BAD_JSON, "server_keys must map server names to key criteria")
        if len(criteria) > MAX_SERVERS_PER_QUERY:
            raise MatrixError(400, Codes.INVALID_PARAM, f"at most {MAX_SERVERS_PER_QUERY} servers per query")
        wanted: dict[str, dict[str, int | None]] = {}
        for server_name, keys in criteria.items():
            if not is_valid_server_name(server_name):
                continue
            wanted[server_name] = {}
            for key_id, key_criteria in keys.items():
                ts = key_criteria.get("minimum_valid_until_ts") if isinstance(key_criteria, Mapping) else None
                valid = isinstance(ts, int) and not isinstance(ts, bool)
                wanted[server_name][str(key_id)] = ts if valid else None
        answers = await asyncio.gather(*(self._vouch(s, keys) for s, keys in wanted.items()))
        return {"server_keys": [response for responses in answers for response in responses]}

    async def _vouch(self, server_name: str, wanted: Mapping[str, int | None],
                     all_minimum: int | None = None) -> list[dict[str, Any]]:
        responses = await self._keyring.key_responses_for(server_name, wanted, all_minimum)
        # Copies: signing adds to the `signatures` object, which the cache may share.
        copies = [{**r, "signatures": {k: dict(v) for k, v in (r.get("signatures") or {}).items()}} for r in responses]
        return [sign_object(r, self._local.server_name, self._local.signing_key) for r in copies]
