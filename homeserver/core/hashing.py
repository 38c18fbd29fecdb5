"""Content hashes and reference hashes of events.

Content hash: https://spec.matrix.org/v1.19/server-server-api/#calculating-the-content-hash-for-an-event
Reference hash: https://spec.matrix.org/v1.19/server-server-api/#calculating-the-reference-hash-for-an-event
"""

from __future__ import annotations

import hashlib
from typing import Any

from unpaddedbase64 import decode_base64, encode_base64

from homeserver.core.canonical_json import encode_canonical_json
from homeserver.core.redaction import redact
from homeserver.core.room_versions import RoomVersion

_NOT_HASHED = ("unsigned", "signatures", "hashes")


def compute_content_hash(pdu: dict[str, Any]) -> str:
    """sha256 over the canonical PDU without unsigned, signatures and hashes; unpadded base64."""
    stripped = {k: v for k, v in pdu.items() if k not in _NOT_HASHED}
    return encode_base64(hashlib.sha256(encode_canonical_json(stripped)).digest())


def check_content_hash(pdu: dict[str, Any]) -> bool:
    """Whether `hashes.sha256` matches the PDU's content (False when absent or malformed)."""
    hashes = pdu.get("hashes")
    expected = hashes.get("sha256") if isinstance(hashes, dict) else None
    if not isinstance(expected, str):
        return False
    try:
        return decode_base64(expected) == decode_base64(compute_content_hash(pdu))
    except Exception:
        return False


def compute_reference_hash(pdu: dict[str, Any], room_version: RoomVersion) -> bytes:
    """sha256 over the redacted PDU without signatures, unsigned and age_ts."""
    redacted = redact(pdu, room_version)
    for key in ("signatures", "unsigned", "age_ts"):
        redacted.pop(key, None)
    return hashlib.sha256(encode_canonical_json(redacted)).digest()
