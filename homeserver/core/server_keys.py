"""Server key responses (`GET /_matrix/key/v2/server`): building ours, checking a peer's.

https://spec.matrix.org/v1.19/server-server-api/#retrieving-server-keys. A response lists the
server's `verify_keys` (valid for requests and events) and `old_verify_keys` (events only,
each with the `expired_ts` it stopped being used), and is signed by the server itself with
its current keys. `valid_until_ts` says when to refresh; a receiver MUST use the lesser of it
and 7 days into the future (keys_server.yaml), and room versions 1-4 ignore it (callers pass
a minimum validity of 0 for those).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from signedjson.key import decode_verify_key_base64, encode_verify_key_base64, get_verify_key
from signedjson.sign import SignatureVerifyException, sign_json, verify_signed_json

# keys_server.yaml: "Servers MUST use the lesser of this field and 7 days into the future".
MAX_KEY_VALIDITY_MS = 7 * 24 * 3600 * 1000
_KEY_ID = re.compile(r"ed25519:[A-Za-z0-9_]+")


class InvalidKeyResponse(ValueError):
    """A key response is malformed, for the wrong server, or not signed by the server itself."""


@dataclass(frozen=True, slots=True)
class ServerKey:
    """One verify key of a server. `valid_until_ts` is how long signatures by it are accepted:
    the response's validity (capped at 7 days after it was received) for a current key, or its
    `expired_ts` for an old one (`expired` is then true)."""
    server_name: str
    key_id: str
    key: str  # unpadded base64
    valid_until_ts: int
    expired: bool = False

    @property
    def verify_key(self) -> Any:
        algorithm, version = self.key_id.split(":", 1)
        return decode_verify_key_base64(algorithm, version, self.key)


@dataclass(frozen=True, slots=True)
class OldKey:
    key_id: str
    key: str
    expired_ts: int


def key_response(server_name: str, signing_keys: Iterable[Any], old_keys: Iterable[OldKey],
                 valid_until_ts: int) -> dict[str, Any]:
    """Our key response, signed with each of our current signing keys."""
    signing_keys = list(signing_keys)
    response: dict[str, Any] = {
        "server_name": server_name,
        "valid_until_ts": valid_until_ts,
        "verify_keys": {
            f"{k.alg}:{k.version}": {"key": encode_verify_key_base64(get_verify_key(k))} for k in signing_keys
        },
        "old_verify_keys": {
            old.key_id: {"key": old.key, "expired_ts": old.expired_ts} for old in old_keys
        },
    }
    for signing_key in signing_keys:
        response = sign_json(response, server_name, signing_key)
    return response


def check_key_response(response: Any, server_name: str, received_ts: int) -> list[ServerKey]:
    """The keys of a peer's key response, after checking that it is about `server_name` and
    carries a valid signature by the server with one of the listed current keys (every such
    signature must verify). Raises InvalidKeyResponse."""
    if not isinstance(response, Mapping):
        raise InvalidKeyResponse("key response is not a JSON object")
    if response.get("server_name") != server_name:
        raise InvalidKeyResponse(f"key response is for {response.get('server_name')!r}, not {server_name!r}")
    valid_until = response.get("valid_until_ts")
    if not isinstance(valid_until, int) or isinstance(valid_until, bool):
        raise InvalidKeyResponse("key response has no integer valid_until_ts")
    current = _keys(response.get("verify_keys"), "verify_keys")
    old = _keys(response.get("old_verify_keys") or {}, "old_verify_keys")
    if not current:
        raise InvalidKeyResponse("key response lists no verify_keys")
    signed_with = [k for k in ((response.get("signatures") or {}).get(server_name) or {}) if k in current]
    if not signed_with:
        raise InvalidKeyResponse(f"key response is not signed by {server_name} with a listed key")
    for key_id in signed_with:
        algorithm, version = key_id.split(":", 1)
        try:
            verify_signed_json(dict(response), server_name,
                               decode_verify_key_base64(algorithm, version, current[key_id]["key"]))
        except (SignatureVerifyException, ValueError) as err:
            raise InvalidKeyResponse(f"bad self-signature {key_id} on the key response of {server_name}: {err}") from None
    effective = min(valid_until, received_ts + MAX_KEY_VALIDITY_MS)
    keys = [ServerKey(server_name, key_id, data["key"], effective) for key_id, data in current.items()]
    for key_id, data in old.items():
        if key_id in current:
            continue
        expired_ts = data.get("expired_ts")
        if not isinstance(expired_ts, int) or isinstance(expired_ts, bool):
            raise InvalidKeyResponse(f"old key {key_id} has no integer expired_ts")
        keys.append(ServerKey(server_name, key_id, data["key"], expired_ts, expired=True))
    return keys


def _keys(value: Any, where: str) -> dict[str, dict[str, Any]]:
    """The ed25519 keys of a `verify_keys`/`old_verify_keys` object (other algorithms skipped)."""
    if not isinstance(value, Mapping):
        raise InvalidKeyResponse(f"{where} is not an object")
    keys = {}
    for key_id, data in value.items():
        if not _KEY_ID.fullmatch(str(key_id)):
            continue
        if not isinstance(data, Mapping) or not isinstance(data.get("key"), str):
            raise InvalidKeyResponse(f"{where}.{key_id} has no key")
        try:
            decode_verify_key_base64("ed25519", key_id.split(":", 1)[1], data["key"])
        except Exception:
            raise InvalidKeyResponse(f"{where}.{key_id} is not an ed25519 public key") from None
        keys[key_id] = dict(data)
    return keys
