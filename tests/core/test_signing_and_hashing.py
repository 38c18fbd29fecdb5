"""The spec's cryptographic test vectors (appendices), and our own events' hashes and IDs."""

import json
from pathlib import Path

import pytest
from signedjson.key import decode_signing_key_base64, get_verify_key

from homeserver.core.hashing import check_content_hash, compute_content_hash, compute_reference_hash
from homeserver.core.room_versions import KNOWN_ROOM_VERSIONS, V1
from homeserver.core.signing import InvalidSignature, sign_event, sign_object, verify_event_signature, verify_object

VECTORS = json.loads((Path(__file__).parent / "vectors" / "appendix_signing.json").read_text())
KEY = decode_signing_key_base64("ed25519", "1", VECTORS["seed"])


@pytest.mark.parametrize("case", VECTORS["json_signing"], ids=["empty", "data"])
def test_json_signing_vectors(case):
    signed = sign_object(case["input"], "domain", KEY)
    assert signed["signatures"] == {"domain": {"ed25519:1": case["signature"]}}
    verify_object(signed, "domain", get_verify_key(KEY))


@pytest.mark.parametrize("case", VECTORS["event_signing"], ids=["minimal", "redactable"])
def test_event_signing_vectors(case):
    pdu = dict(case["input"])
    pdu["hashes"] = {"sha256": compute_content_hash(pdu)}
    assert pdu["hashes"]["sha256"] == case["sha256"]
    signed = sign_event(pdu, "domain", KEY, V1)
    assert signed["signatures"] == {"domain": {"ed25519:1": case["signature"]}}
    assert signed["unsigned"] == {"age_ts": 1000000}  # unsigned is neither hashed nor signed
    verify_event_signature(signed, "domain", get_verify_key(KEY), V1)
    assert check_content_hash(signed)


def test_tampering_breaks_hash_but_not_a_redaction_safe_signature():
    case = VECTORS["event_signing"][1]
    pdu = dict(case["input"])
    pdu["hashes"] = {"sha256": compute_content_hash(pdu)}
    signed = sign_event(pdu, "domain", KEY, V1)
    tampered = {**signed, "content": {"body": "something else"}}
    assert not check_content_hash(tampered)
    # The signature covers the redacted form, which does not include a message body...
    verify_event_signature(tampered, "domain", get_verify_key(KEY), V1)
    # ...but does include the sender.
    with pytest.raises(InvalidSignature):
        verify_event_signature({**signed, "sender": "@mallory:domain"}, "domain", get_verify_key(KEY), V1)


def test_missing_or_malformed_hash_is_a_mismatch():
    assert not check_content_hash({"type": "X"})
    assert not check_content_hash({"type": "X", "hashes": {"sha256": 5}})
    assert not check_content_hash({"type": "X", "hashes": {"sha256": "!!notbase64"}})


def test_reference_hash_ignores_signatures_unsigned_and_redactable_content():
    base = {"type": "m.room.message", "room_id": "!r:d", "sender": "@u:d", "content": {"body": "a"},
            "origin_server_ts": 1, "depth": 1, "prev_events": [], "auth_events": [], "hashes": {"sha256": "x"}}
    v12 = KNOWN_ROOM_VERSIONS["12"]
    reference = compute_reference_hash(base, v12)
    assert compute_reference_hash({**base, "signatures": {"d": {"k": "s"}}, "unsigned": {"age": 4}}, v12) == reference
    assert compute_reference_hash({**base, "content": {"body": "b"}}, v12) == reference
    assert compute_reference_hash({**base, "depth": 2}, v12) != reference
