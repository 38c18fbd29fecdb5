"""Signing: signed JSON and event signatures with the server's ed25519 keys.

https://spec.matrix.org/v1.19/appendices/#signing-json and
https://spec.matrix.org/v1.19/server-server-api/#signing-events: events are signed in their
redacted form, so a redaction never invalidates a signature.
"""

from __future__ import annotations

from typing import Any

from signedjson.sign import SignatureVerifyException, sign_json, verify_signed_json

from homeserver.core.redaction import redact
from homeserver.core.room_versions import RoomVersion


class InvalidSignature(ValueError):
    """A signature is missing or does not verify."""


def sign_event(pdu: dict[str, Any], server_name: str, signing_key: Any, room_version: RoomVersion) -> dict[str, Any]:
    """A copy of `pdu` with this server's signature over its redacted form added."""
    redacted = redact(pdu, room_version)
    redacted.pop("signatures", None)
    signed = sign_json(redacted, server_name, signing_key)
    out = dict(pdu)
    signatures = {k: dict(v) for k, v in (pdu.get("signatures") or {}).items()}
    signatures.setdefault(server_name, {}).update(signed["signatures"][server_name])
    out["signatures"] = signatures
    return out


def verify_event_signature(pdu: dict[str, Any], server_name: str, verify_key: Any, room_version: RoomVersion) -> None:
    """Raise InvalidSignature unless `server_name` signed the event's redacted form with `verify_key`."""
    redacted = redact(pdu, room_version)
    redacted["signatures"] = pdu.get("signatures") or {}
    try:
        verify_signed_json(redacted, server_name, verify_key)
    except SignatureVerifyException as err:
        raise InvalidSignature(str(err)) from None


def sign_object(obj: dict[str, Any], server_name: str, signing_key: Any) -> dict[str, Any]:
    """Sign arbitrary JSON (key responses, X-Matrix requests); returns a signed copy."""
    return sign_json(dict(obj), server_name, signing_key)


def verify_object(obj: dict[str, Any], server_name: str, verify_key: Any) -> None:
    try:
        verify_signed_json(obj, server_name, verify_key)
    except SignatureVerifyException as err:
        raise InvalidSignature(str(err)) from None
