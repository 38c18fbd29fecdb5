"""Checks on received PDUs (core.pdu_checks): format, required signers, content hash, and the
auth verdicts of checks 4-6. The spec's event-signing vectors are used where they apply."""

import json
from pathlib import Path

import pytest
from signedjson.key import (
    decode_signing_key_base64,
    generate_signing_key,
    get_verify_key,
)

from homeserver.core.events import InvalidEvent, make_event
from homeserver.core.hashing import compute_content_hash
from homeserver.core.pdu_checks import (
    MAX_AUTH_EVENTS,
    MAX_PREV_EVENTS,
    Outcome,
    check_against_auth_events,
    check_against_state,
    missing_auth_event_ids,
    precheck_pdu,
    required_signers,
)
from homeserver.core.room_versions import KNOWN_ROOM_VERSIONS as V
from homeserver.core.room_versions import EventFormat
from homeserver.core.signing import sign_event, verify_event_signature, verify_object

VECTORS = json.loads((Path(__file__).parent / "vectors" / "appendix_signing.json").read_text())
SPEC_KEY = decode_signing_key_base64("ed25519", "1", VECTORS["seed"])
KEYS = {"a.test": generate_signing_key("a1"), "b.test": generate_signing_key("b1")}
ALL = [str(v) for v in range(1, 13)]
V12_ROOM = "!" + "R" * 43


def room_id_for(version: str) -> str:
    return V12_ROOM if V[version].auth.room_id_from_create_event else "!room:a.test"


def refs(version: str, ids: list[str]) -> list:
    if V[version].event_format is EventFormat.V1:
        return [[e, {"sha256": "AAAA"}] for e in ids]
    return list(ids)


def pdu(version: str, signers=("a.test",), **fields) -> dict:
    """A PDU dict (not parsed), hashed and signed by `signers` after `fields` are applied."""
    out = {"type": "m.room.message", "sender": "@alice:a.test", "content": {"body": "hi"}, "depth": 5,
           "origin_server_ts": 1_000_000, "room_id": room_id_for(version),
           "prev_events": refs(version, ["$prev:a.test"]), "auth_events": refs(version, ["$auth:a.test"])}
    if V[version].event_format is EventFormat.V1:
        out["event_id"] = "$ev:a.test"
    out.update(fields)
    out = {k: v for k, v in out.items() if v is not None}
    out["hashes"] = {"sha256": compute_content_hash(out)}
    out["signatures"] = {}
    for server in signers:
        out = sign_event(out, server, KEYS[server], V[version])
    return out


# --- the spec's vectors ---------------------------------------------------------------------------

@pytest.mark.parametrize("version", [str(v) for v in range(3, 11)])
def test_spec_minimal_event_vector_passes_as_a_hash_id_pdu(version):
    """The appendix's minimal signed event is a complete v3-v10 PDU (v11 stopped keeping
    `origin` in the redacted form that the signature covers)."""
    case = VECTORS["event_signing"][0]
    signed = {**case["input"], "hashes": {"sha256": case["sha256"]},
              "signatures": {"domain": {"ed25519:1": case["signature"]}}}
    pre = precheck_pdu(signed, V[version], origin="domain")
    assert pre.content_hash_ok and pre.redacted_event is None
    assert pre.required_signers == ("domain",)
    # The signed form is exactly what the spec's signature covers.
    verify_object(pre.signed_form, "domain", get_verify_key(SPEC_KEY))
    assert pre.minimum_valid_until_ts == (1000000 if V[version].signatures.enforce_key_validity else 0)
    assert pre.event_id.startswith("$") and ":" not in pre.event_id
    # Tampering with the content: the signature (over the redacted form) still holds, the
    # hash does not, and the redacted copy keeps the event ID.
    tampered = precheck_pdu({**signed, "content": {"body": "evil"}}, V[version])
    assert not tampered.content_hash_ok
    assert tampered.event_to_process.content == {} and tampered.event_to_process.event_id == pre.event_id
    verify_object(tampered.signed_form, "domain", get_verify_key(SPEC_KEY))


def test_spec_vectors_are_not_valid_everywhere():
    minimal, redactable = VECTORS["event_signing"]
    signed = {**minimal["input"], "hashes": {"sha256": minimal["sha256"]},
              "signatures": {"domain": {"ed25519:1": minimal["signature"]}}}
    with pytest.raises(InvalidEvent, match="event_id"):
        precheck_pdu(signed, V["1"])  # v1-v2 PDUs carry their event ID
    with pytest.raises(InvalidEvent, match="room_id"):
        precheck_pdu(signed, V["12"])  # '!x:domain' is no v12 room ID
    # The redactable vector is a signing example, not a PDU: no depth, prev or auth events.
    with pytest.raises(InvalidEvent):
        precheck_pdu({**redactable["input"], "hashes": {"sha256": redactable["sha256"]}}, V["1"])


# --- required signers ---------------------------------------------------------------------------

@pytest.mark.parametrize("version", ALL)
def test_the_senders_server_must_sign(version):
    pre = precheck_pdu(pdu(version, sender="@bob:b.test"), V[version])
    expected = ("b.test", "a.test") if V[version].event_format is EventFormat.V1 else ("b.test",)
    assert pre.required_signers == expected


def test_v1_v2_also_need_the_event_ids_server_once():
    for version in ("1", "2"):
        assert precheck_pdu(pdu(version), V[version]).required_signers == ("a.test",)
        assert precheck_pdu(pdu(version, event_id="$x:b.test"), V[version]).required_signers == ("a.test", "b.test")


@pytest.mark.parametrize("version", ALL)
def test_restricted_join_needs_the_authorising_server(version):
    content = {"membership": "join", "join_authorised_via_users_server": "@alice:a.test"}
    pre = precheck_pdu(pdu(version, type="m.room.member", sender="@bob:b.test", state_key="@bob:b.test",
                           content=content), V[version])
    base = ("b.test", "a.test") if V[version].event_format is EventFormat.V1 else ("b.test",)
    if V[version].auth.restricted_join_rule:  # v8+
        assert pre.required_signers == ("b.test", "a.test")
    else:
        assert pre.required_signers == base


def test_authorising_user_only_matters_on_joins_and_must_be_a_user_id():
    leave = {"membership": "leave", "join_authorised_via_users_server": "@alice:a.test"}
    pre = precheck_pdu(pdu("10", type="m.room.member", sender="@bob:b.test", state_key="@bob:b.test",
                           content=leave), V["10"])
    assert pre.required_signers == ("b.test",)
    with pytest.raises(InvalidEvent, match="join_authorised_via_users_server"):
        precheck_pdu(pdu("10", type="m.room.member", sender="@bob:b.test", state_key="@bob:b.test",
                         content={"membership": "join", "join_authorised_via_users_server": "alice"}), V["10"])


def test_third_party_invite_may_be_signed_by_the_server_sending_it():
    content = {"membership": "invite", "third_party_invite": {"display_name": "x", "signed": {}}}
    fields = {"type": "m.room.member", "sender": "@alice:a.test", "state_key": "@carol:b.test", "content": content}
    # Signed by the sender's server: that signature is what counts.
    assert precheck_pdu(pdu("10", **fields), V["10"], origin="b.test").required_signers == ("a.test",)
    # Not signed by it: the origin's signature stands in.
    unsigned_by_sender = pdu("10", signers=("b.test",), **fields)
    assert precheck_pdu(unsigned_by_sender, V["10"], origin="b.test").required_signers == ("b.test",)
    with pytest.raises(InvalidEvent, match="third-party invite"):
        precheck_pdu(unsigned_by_sender, V["10"])
    # An ordinary invite has no such exception.
    plain = pdu("10", signers=("b.test",), **{**fields, "content": {"membership": "invite"}})
    assert required_signers(precheck_pdu(plain, V["10"], origin="b.test").event, "b.test") == ("a.test",)


def test_key_validity_applies_from_v5():
    assert precheck_pdu(pdu("4", origin_server_ts=77), V["4"]).minimum_valid_until_ts == 0
    assert precheck_pdu(pdu("5", origin_server_ts=77), V["5"]).minimum_valid_until_ts == 77


# --- content hash ---------------------------------------------------------------------------------

@pytest.mark.parametrize("version", ALL)
def test_hash_mismatch_gives_the_redacted_copy(version):
    good = pdu(version, type="m.room.member", state_key="@alice:a.test",
               content={"membership": "join", "displayname": "Alice"})
    tampered = {**good, "content": {"membership": "join", "displayname": "Mallory"}}
    pre = precheck_pdu(tampered, V[version])
    assert not pre.content_hash_ok
    assert pre.event_to_process is pre.redacted_event
    assert pre.redacted_event.content == {"membership": "join"}
    assert pre.redacted_event.event_id == precheck_pdu(good, V[version]).event_id
    # The signature still verifies on what we keep.
    verify_event_signature(pre.redacted_event.pdu, "a.test", get_verify_key(KEYS["a.test"]), V[version])


def test_a_redacted_copy_received_as_such_is_flagged_too():
    good = pdu("12", content={"body": "secret"})
    pre = precheck_pdu({**good, "content": {}}, V["12"])
    assert not pre.content_hash_ok and pre.event_to_process.content == {}


# --- format ---------------------------------------------------------------------------------------

def fake_ids(n: int) -> list[str]:
    return [f"$e{i}:a.test" for i in range(n)]


@pytest.mark.parametrize("version", ["1", "5", "11", "12"])
def test_dag_bounds(version):
    precheck_pdu(pdu(version, prev_events=refs(version, fake_ids(MAX_PREV_EVENTS)),
                     auth_events=refs(version, fake_ids(MAX_AUTH_EVENTS))), V[version])
    with pytest.raises(InvalidEvent, match="prev_events"):
        precheck_pdu(pdu(version, prev_events=refs(version, fake_ids(MAX_PREV_EVENTS + 1))), V[version])
    with pytest.raises(InvalidEvent, match="auth_events"):
        precheck_pdu(pdu(version, auth_events=refs(version, fake_ids(MAX_AUTH_EVENTS + 1))), V[version])


def test_depth_bounds():
    precheck_pdu(pdu("5", depth=2**60), V["5"])
    with pytest.raises(InvalidEvent, match="depth"):
        precheck_pdu(pdu("5", depth=2**63), V["5"])
    precheck_pdu(pdu("6", depth=2**53 - 1), V["6"])
    with pytest.raises(InvalidEvent):
        precheck_pdu(pdu("6", depth=2**53), V["6"])
    with pytest.raises(InvalidEvent, match="depth"):
        precheck_pdu(pdu("12", depth=-1), V["12"])


def test_floats_and_big_integers_from_v6():
    precheck_pdu(pdu("5", content={"n": 1.5}), V["5"])
    for version in ("6", "12"):
        with pytest.raises(InvalidEvent, match="float"):
            precheck_pdu(pdu(version, content={"n": 1.5}), V[version])
        with pytest.raises(InvalidEvent, match="integer"):
            precheck_pdu(pdu(version, content={"n": 2**53}), V[version])


@pytest.mark.parametrize("version", ["1", "12"])
def test_size_limits(version):
    with pytest.raises(InvalidEvent, match="65536"):
        precheck_pdu(pdu(version, content={"body": "x" * 65536}), V[version])
    for field in ("type", "state_key"):
        with pytest.raises(InvalidEvent, match=field):
            precheck_pdu(pdu(version, **{field: "t" * 256}), V[version])
    with pytest.raises(InvalidEvent, match="sender"):
        precheck_pdu(pdu(version, sender="@" + "u" * 250 + ":a.test"), V[version])
    # Bytes, not characters: 128 two-byte characters are 256 bytes.
    with pytest.raises(InvalidEvent, match="state_key"):
        precheck_pdu(pdu(version, state_key="é" * 128), V[version])
    precheck_pdu(pdu(version, state_key="é" * 127), V[version])


def test_room_and_event_id_shapes():
    with pytest.raises(InvalidEvent, match="room_id"):
        precheck_pdu(pdu("11", room_id="!" + "r" * 250 + ":a.test"), V["11"])
    with pytest.raises(InvalidEvent, match="room_id"):
        precheck_pdu(pdu("11", room_id="!nodomain"), V["11"])
    with pytest.raises(InvalidEvent, match="room_id"):
        precheck_pdu(pdu("12", room_id="!room:a.test"), V["12"])
    with pytest.raises(InvalidEvent, match="event_id"):
        precheck_pdu(pdu("1", event_id="$nodomain"), V["1"])
    with pytest.raises(InvalidEvent, match="event ID"):
        precheck_pdu(pdu("10", prev_events=["not-an-id"]), V["10"])
    with pytest.raises(InvalidEvent, match="belongs to"):
        precheck_pdu(pdu("10"), V["10"], expected_room_id="!other:a.test")
    # v12: the create event is implied by the room ID and may not be cited (dropped, as Synapse does).
    with pytest.raises(InvalidEvent, match="create event"):
        precheck_pdu(pdu("12", auth_events=["$" + V12_ROOM[1:]]), V["12"])


def test_v12_create_event_names_its_room():
    create = pdu("12", type="m.room.create", state_key="", content={"room_version": "12"}, room_id=None,
                 prev_events=[], auth_events=[], depth=1)
    pre = precheck_pdu(create, V["12"])
    assert pre.event.room_id == "!" + pre.event_id[1:]
    precheck_pdu(create, V["12"], expected_room_id=pre.event.room_id)


@pytest.mark.parametrize("signatures", [[], {"a.test": "sig"}, {"a.test": {"ed25519:a1": 5}}])
def test_malformed_signatures_are_dropped(signatures):
    with pytest.raises(InvalidEvent, match="signatures"):
        precheck_pdu({**pdu("10"), "signatures": signatures}, V["10"])


def test_not_an_object():
    with pytest.raises(InvalidEvent):
        precheck_pdu(["not", "a", "pdu"], V["10"])


# --- checks 4-6 -----------------------------------------------------------------------------------

class Room:
    """A public room's auth events (unsigned: the verdicts do not look at signatures)."""

    def __init__(self, version: str):
        self.v = V[version]
        content = {"room_version": version}
        if not self.v.auth.implicit_room_creator:
            content["creator"] = "@alice:a.test"
        self.create = make_event(self.v, type="m.room.create", sender="@alice:a.test", state_key="", content=content,
                                 room_id=None if self.v.auth.room_id_from_create_event else "!room:a.test")
        self.room_id = self.create.room_id
        self.by_id = {self.create.event_id: self.create}
        self.state = {("m.room.create", ""): self.create}
        self.alice = self.add("@alice:a.test", "m.room.member", {"membership": "join"}, "@alice:a.test")
        users = {} if self.v.auth.privileged_room_creators else {"@alice:a.test": 100}
        self.pl = self.add("@alice:a.test", "m.room.power_levels", {"users": users}, "")
        self.join_rules = self.add("@alice:a.test", "m.room.join_rules", {"join_rule": "public"}, "")

    def base_auth(self):
        return [self.create.event_id] if self.v.auth.create_event_in_auth_events else []

    def event(self, sender, event_type, content, state_key=None, auth=None):
        if auth is None:
            auth = self.base_auth() + [e.event_id for e in (self.state.get(("m.room.power_levels", "")),
                                                            self.state.get(("m.room.member", sender))) if e]
            if event_type == "m.room.member":
                auth += [e.event_id for e in (self.state.get(("m.room.join_rules", "")),) if e]
        return make_event(self.v, type=event_type, sender=sender, content=content, state_key=state_key,
                          room_id=self.room_id, auth_events=auth, prev_events=[self.create.event_id],
                          depth=len(self.by_id) + 1)

    def add(self, *args, **kw):
        event = self.event(*args, **kw)
        self.by_id[event.event_id] = event
        if event.state_key is not None:
            self.state[(event.type, event.state_key)] = event
        return event


@pytest.mark.parametrize("version", ["1", "6", "11", "12"])
def test_check_4_accepts_well_cited_events_and_rejects_the_rest(version):
    room = Room(version)
    for event in room.by_id.values():
        assert check_against_auth_events(event, room.by_id).accepted, event.type
    bob_join = room.add("@bob:b.test", "m.room.member", {"membership": "join"}, "@bob:b.test")
    message = room.event("@bob:b.test", "m.room.message", {"body": "hi"})
    assert check_against_auth_events(message, room.by_id).accepted
    # Fails the auth rules against its auth events: carol never joined.
    stranger = room.event("@carol:b.test", "m.room.message", {"body": "hi"})
    verdict = check_against_auth_events(stranger, room.by_id)
    assert verdict.rejected and verdict.reason.startswith("6:")
    # Cites an auth event that selection would not pick.
    wrong = room.event("@bob:b.test", "m.room.message", {"body": "hi"},
                       auth=[e.event_id for e in message_auth(room, message)] + [room.join_rules.event_id])
    assert check_against_auth_events(wrong, room.by_id).reason.startswith("3.2")
    # Cites a rejected auth event.
    assert check_against_auth_events(message, room.by_id, {bob_join.event_id}).reason.startswith("3.3")
    # Cites an event we do not have: fetch it first; still missing, it rejects.
    unknown = room.event("@bob:b.test", "m.room.message", {"body": "hi"},
                         auth=room.base_auth() + [room.pl.event_id, "$unknown:b.test"])
    assert missing_auth_event_ids(unknown, room.by_id) == ("$unknown:b.test",)
    assert "unknown auth events" in check_against_auth_events(unknown, room.by_id).reason


def message_auth(room, message):
    return [room.by_id[e] for e in message.auth_event_ids]


def test_v12_check_4_needs_the_create_event_from_the_room_id():
    room = Room("12")
    message = room.event("@alice:a.test", "m.room.message", {"body": "hi"})
    assert room.create.event_id not in message.auth_event_ids
    without_create = {k: v for k, v in room.by_id.items() if k != room.create.event_id}
    assert missing_auth_event_ids(message, without_create) == (room.create.event_id,)
    assert check_against_auth_events(message, without_create).rejected
    assert check_against_auth_events(message, room.by_id).accepted
    verdict = check_against_auth_events(message, room.by_id, {room.create.event_id})
    assert verdict.rejected and verdict.reason.startswith("2:")


def test_checks_5_and_6_reject_or_soft_fail():
    room = Room("12")
    room.add("@bob:b.test", "m.room.member", {"membership": "join"}, "@bob:b.test")
    before_ban = dict(room.state)
    room.add("@alice:a.test", "m.room.member", {"membership": "ban"}, "@bob:b.test")
    current = dict(room.state)
    # Bob, banned, sends a message on the branch before his ban.
    message = make_event(room.v, type="m.room.message", sender="@bob:b.test", content={"body": "evading"},
                         room_id=room.room_id, auth_events=[room.pl.event_id], prev_events=[room.pl.event_id])
    assert check_against_state(message, before_ban).outcome is Outcome.ACCEPTED
    assert check_against_state(message, before_ban, before_ban).accepted
    verdict = check_against_state(message, before_ban, current)
    assert verdict.soft_failed and verdict.reason.startswith("6:")
    assert check_against_state(message, current).rejected
    assert check_against_state(message, current, before_ban).rejected  # rejection wins
