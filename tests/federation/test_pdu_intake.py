"""The first stage of receiving PDUs (services/federation/pdu_checks.py): checks 1-4 on real
signed events, and the state verdicts of checks 5-6.

Two fake servers, a.test and b.test, sign with real ed25519 keys (signedjson). The keyring is
a fake: `FakeKeyring` implements the two public methods of federation.keys.Keyring
(`verify_json_for_server`, `get_keys`) over an in-memory key map, with the real one's rules
(every signature by a usable key must verify, keys not valid at `minimum_valid_until_ts` are
unusable, no usable key fails). Fetching keys over the network is the keyring's own business,
tested in test_keyring.py; this is the one place a fake stands in for it. No database needed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from signedjson.key import (
    decode_signing_key_base64,
    encode_verify_key_base64,
    generate_signing_key,
    get_verify_key,
)
from signedjson.sign import SignatureVerifyException, signature_ids, verify_signed_json

from homeserver.core.builder import build_event
from homeserver.core.events import Event
from homeserver.core.hashing import compute_content_hash
from homeserver.core.room_versions import KNOWN_ROOM_VERSIONS as V
from homeserver.core.room_versions import EventFormat
from homeserver.core.server_keys import ServerKey
from homeserver.core.signing import InvalidSignature, sign_event
from homeserver.services.federation.pdu_checks import (
    CheckedPdu,
    InvalidPduFormat,
    InvalidPduSignature,
    Outcome,
    PduChecker,
    PduDropped,
    check_against_state,
    check_auth_against_auth_events,
    missing_auth_event_ids,
)

VECTORS = json.loads((Path(__file__).parent.parent / "core" / "vectors" / "appendix_signing.json").read_text())
KEYS = {"a.test": generate_signing_key("a1"), "b.test": generate_signing_key("b1")}
ALICE, BOB, CAROL = "@alice:a.test", "@bob:b.test", "@carol:b.test"
NOW = 1_700_000_000_000
FOREVER = 2**62
ALL = [str(v) for v in range(1, 13)]


class FakeKeyring:
    """federation.keys.Keyring's public surface over an in-memory key map (see the docstring)."""

    def __init__(self, keys: dict[str, list[ServerKey]]) -> None:
        self.keys = {server: {k.key_id: k for k in ks} for server, ks in keys.items()}
        self.calls: list[tuple[str, int]] = []

    async def get_keys(self, server_name: str, key_ids, minimum_valid_until_ts: int = 0) -> dict[str, ServerKey]:
        known = self.keys.get(server_name, {})
        return {k: known[k] for k in key_ids if k in known}

    async def verify_json_for_server(self, server_name: str, obj: dict[str, Any], minimum_valid_until_ts: int) -> None:
        self.calls.append((server_name, minimum_valid_until_ts))
        key_ids = signature_ids(obj, server_name)
        if not key_ids:
            raise InvalidSignature(f"not signed by {server_name}")
        keys = await self.get_keys(server_name, key_ids, minimum_valid_until_ts)
        usable = [k for k in keys.values() if k.valid_until_ts >= minimum_valid_until_ts]
        if not usable:
            raise InvalidSignature(f"no usable key of {server_name}")
        for key in usable:
            try:
                verify_signed_json(obj, server_name, key.verify_key)
            except SignatureVerifyException as err:
                raise InvalidSignature(str(err)) from None


def server_key(server: str, signing_key, valid_until_ts: int = FOREVER) -> ServerKey:
    return ServerKey(server, f"ed25519:{signing_key.version}", encode_verify_key_base64(get_verify_key(signing_key)),
                     valid_until_ts)


@pytest.fixture
def keyring() -> FakeKeyring:
    return FakeKeyring({server: [server_key(server, key)] for server, key in KEYS.items()})


@pytest.fixture
def checker(keyring) -> PduChecker:
    return PduChecker(keyring)  # type: ignore[arg-type]


def resign(pdu: dict[str, Any], version: str, signers=("a.test",), *, rehash: bool = True) -> dict[str, Any]:
    """`pdu` with its hash recomputed (unless told not to) and signed afresh by `signers`."""
    out = {k: v for k, v in pdu.items() if k != "signatures"}
    if rehash:
        out["hashes"] = {"sha256": compute_content_hash(out)}
    out["signatures"] = {}
    for server in signers:
        out = sign_event(out, server, KEYS[server], V[version])
    return out


class Room:
    """A room made by alice on a.test, every event built and signed as a.test would."""

    def __init__(self, version: str, join_rule: dict[str, Any] | None = None, *, room_id: str = "!room:a.test",
                 create_extra: dict[str, Any] | None = None) -> None:
        self.version = version
        self.v = V[version]
        self.events: dict[str, Event] = {}
        self.state: dict[tuple[str, str], Event] = {}
        self.last: list[str] = []
        content = {"room_version": version, **(create_extra or {})}
        if not self.v.auth.implicit_room_creator:
            content["creator"] = ALICE
        self.room_id: str | None = None if self.v.auth.room_id_from_create_event else room_id
        self.create = self.add(ALICE, "m.room.create", content, "")
        self.room_id = self.create.room_id
        self.add(ALICE, "m.room.member", {"membership": "join"}, ALICE)
        users = {} if self.v.auth.privileged_room_creators else {ALICE: 100}
        self.add(ALICE, "m.room.power_levels", {"users": users}, "")
        self.add(ALICE, "m.room.join_rules", join_rule or {"join_rule": "public"}, "")

    def auth_for(self, sender: str, event_type: str, content: dict[str, Any], state_key: str | None) -> list[str]:
        if event_type == "m.room.create":
            return []
        keys = [("m.room.create", "")] if self.v.auth.create_event_in_auth_events else []
        keys += [("m.room.power_levels", ""), ("m.room.member", sender)]
        if event_type == "m.room.member":
            keys += [("m.room.member", state_key), ("m.room.join_rules", "")]
            if "join_authorised_via_users_server" in content:
                keys.append(("m.room.member", content["join_authorised_via_users_server"]))
        return list(dict.fromkeys(self.state[k].event_id for k in keys if k in self.state))

    def build(self, sender: str, event_type: str, content: dict[str, Any], state_key: str | None = None, *,
              server: str | None = None, auth: list[str] | None = None, prev: list[str] | None = None,
              ts: int = NOW) -> Event:
        server = server or sender.split(":", 1)[1]
        return build_event(
            self.v, room_id=self.room_id, sender=sender, event_type=event_type, content=content,
            state_key=state_key, prev_events=self.last if prev is None else prev,
            auth_events=self.auth_for(sender, event_type, content, state_key) if auth is None else auth,
            depth=len(self.events) + 1, origin_server_ts=ts, server_name=server, signing_key=KEYS[server],
        )

    def add(self, *args: Any, **kw: Any) -> Event:
        return self.accept(self.build(*args, **kw))

    def accept(self, event: Event) -> Event:
        self.events[event.event_id] = event
        if event.state_key is not None:
            self.state[(event.type, event.state_key)] = event
        self.last = [event.event_id]
        return event


async def intake(checker: PduChecker, room: Room, pdu: dict[str, Any], origin: str = "b.test") -> tuple[CheckedPdu, Any]:
    """Checks 1-4 as a caller runs them: check the PDU, then its auth events."""
    checked = await checker.check_pdu(pdu, room.v, origin, expected_room_id=room.room_id)
    assert not missing_auth_event_ids(checked.event, room.events)
    return checked, check_auth_against_auth_events(checked.event, room.events)


# --- good PDUs ------------------------------------------------------------------------------------

@pytest.mark.parametrize("version", ALL)
async def test_a_whole_room_from_two_servers_passes(checker, keyring, version):
    """Every event format: v1-v2 (event IDs with a server), v3, v4-v11, v12 (room ID = create event)."""
    room = Room(version)
    join = room.build(BOB, "m.room.member", {"membership": "join"}, BOB)
    room.accept(join)
    message = room.build(BOB, "m.room.message", {"body": "hello from b"})
    for event in room.events.values():
        checked, verdict = await intake(checker, room, event.pdu, origin="a.test")
        assert checked.event_id == event.event_id and not checked.redacted
        assert verdict.accepted, verdict.reason
    checked, verdict = await intake(checker, room, message.pdu)
    assert verdict.accepted and checked.event.content == {"body": "hello from b"}
    assert checked.signers == ("b.test",)
    # v5+: keys must be valid at the event's origin_server_ts; v1-v4 ask for nothing.
    assert keyring.calls[-1] == ("b.test", NOW if V[version].signatures.enforce_key_validity else 0)
    fmt = V[version].event_format
    if fmt is EventFormat.V1:
        assert message.event_id.endswith(":b.test")
    if fmt is EventFormat.V4:
        assert "room_id" not in room.create.pdu and room.room_id == "!" + room.create.event_id[1:]


@pytest.mark.parametrize("version", ["3", "5", "10"])
async def test_the_spec_signing_vector_passes(version):
    """The appendix's minimal event, signed by `domain` with the vector key, is a valid PDU
    of the hash-ID room versions that keep `origin` in the redacted form (v3-v10)."""
    case = VECTORS["event_signing"][0]
    pdu = {**case["input"], "hashes": {"sha256": case["sha256"]},
           "signatures": {"domain": {"ed25519:1": case["signature"]}}}
    key = decode_signing_key_base64("ed25519", "1", VECTORS["seed"])
    checker = PduChecker(FakeKeyring({"domain": [server_key("domain", key)]}))  # type: ignore[arg-type]
    checked = await checker.check_pdu(pdu, V[version], "domain")
    assert not checked.redacted and checked.event.type == "X"
    expired = PduChecker(FakeKeyring({"domain": [server_key("domain", key, valid_until_ts=999_999)]}))  # type: ignore[arg-type]
    if V[version].signatures.enforce_key_validity:  # origin_server_ts is 1000000
        with pytest.raises(InvalidPduSignature):
            await expired.check_pdu(pdu, V[version], "domain")
    else:
        await expired.check_pdu(pdu, V[version], "domain")


# --- signatures (dropped) -------------------------------------------------------------------------

@pytest.mark.parametrize("version", ["1", "4", "12"])
async def test_bad_signature_is_dropped(checker, version):
    room = Room(version)
    message = room.build(BOB, "m.room.message", {"body": "hi"})
    # b.test's key ID, but a signature made with another key.
    other = generate_signing_key("b1")
    forged = {**message.pdu, "signatures": sign_event({**message.pdu, "signatures": {}}, "b.test", other, V[version])["signatures"]}
    with pytest.raises(InvalidPduSignature) as caught:
        await checker.check_pdu(forged, room.v, "b.test")
    assert caught.value.event_id == message.event_id
    # Garbage instead of a signature.
    garbage = {**message.pdu, "signatures": {"b.test": {"ed25519:b1": "not base64!"}}}
    with pytest.raises(InvalidPduSignature):
        await checker.check_pdu(garbage, room.v, "b.test")


@pytest.mark.parametrize("version", ["1", "4", "12"])
async def test_missing_signature_of_the_senders_server_is_dropped(checker, version):
    room = Room(version)
    message = room.build(BOB, "m.room.message", {"body": "hi"})
    with pytest.raises(InvalidPduSignature, match="b.test"):
        await checker.check_pdu({**message.pdu, "signatures": {}}, room.v, "b.test")
    # A key the server never published counts as no signature.
    unknown_key = resign(message.pdu, version, ())
    unknown_key = sign_event(unknown_key, "b.test", generate_signing_key("unpublished"), room.v)
    with pytest.raises(InvalidPduSignature, match="b.test"):
        await checker.check_pdu(unknown_key, room.v, "b.test")


@pytest.mark.parametrize("version", ["1", "4", "12"])
async def test_forged_sender_is_dropped(checker, version):
    """a.test sends (and signs) an event claiming to be from bob on b.test."""
    room = Room(version)
    forged = room.build(BOB, "m.room.message", {"body": "I am bob"}, server="a.test")
    assert set(forged.pdu["signatures"]) == {"a.test"}
    with pytest.raises(InvalidPduSignature, match="b.test"):
        await checker.check_pdu(forged.pdu, room.v, "a.test")


async def test_v1_event_id_server_must_sign_too(checker):
    room = Room("1")
    message = room.build(BOB, "m.room.message", {"body": "hi"})
    # Bob's event, with an event ID of a.test's, signed by b.test only.
    moved = resign({**message.pdu, "event_id": "$moved:a.test"}, "1", ("b.test",))
    with pytest.raises(InvalidPduSignature, match="a.test"):
        await checker.check_pdu(moved, room.v, "b.test")
    both = resign(moved, "1", ("b.test", "a.test"))
    checked = await checker.check_pdu(both, room.v, "b.test")
    assert checked.signers == ("b.test", "a.test")


@pytest.mark.parametrize("version", ["8", "10", "12"])
async def test_restricted_join_needs_the_authorising_servers_signature(checker, version):
    allow = [{"type": "m.room_membership", "room_id": "!space:a.test"}]
    room = Room(version, {"join_rule": "restricted", "allow": allow})
    content = {"membership": "join", "join_authorised_via_users_server": ALICE}
    join = room.build(BOB, "m.room.member", content, BOB)
    assert set(join.pdu["signatures"]) == {"b.test"}
    with pytest.raises(InvalidPduSignature, match="a.test"):
        await checker.check_pdu(join.pdu, room.v, "b.test")
    # The resident server (a.test) counter-signs, as send_join does.
    countersigned = sign_event(join.pdu, "a.test", KEYS["a.test"], room.v)
    checked, verdict = await intake(checker, room, countersigned)
    assert checked.signers == ("b.test", "a.test") and verdict.accepted, verdict.reason
    # Without the authorising user, the restricted room refuses the join (check 4).
    plain = room.build(BOB, "m.room.member", {"membership": "join"}, BOB)
    checked, verdict = await intake(checker, room, plain.pdu)
    assert verdict.rejected and "5.3.5" in verdict.reason


async def test_third_party_invite_may_come_signed_by_the_origin_only(checker):
    room = Room("10")
    content = {"membership": "invite", "third_party_invite": {"display_name": "c...", "signed": {}}}
    invite = room.build(ALICE, "m.room.member", content, CAROL, server="b.test")
    checked = await checker.check_pdu(invite.pdu, room.v, "b.test")
    assert checked.signers == ("b.test",)
    with pytest.raises(InvalidPduSignature):
        await checker.check_pdu(invite.pdu, room.v, "a.test")


@pytest.mark.parametrize("version", ["4", "5", "12"])
async def test_keys_must_be_valid_at_the_events_time_from_v5(version):
    room = Room(version)
    message = room.build(BOB, "m.room.message", {"body": "hi"}, ts=NOW)
    keyring = FakeKeyring({"a.test": [server_key("a.test", KEYS["a.test"])],
                           "b.test": [server_key("b.test", KEYS["b.test"], valid_until_ts=NOW - 1)]})
    checker = PduChecker(keyring)  # type: ignore[arg-type]
    if V[version].signatures.enforce_key_validity:
        with pytest.raises(InvalidPduSignature):
            await checker.check_pdu(message.pdu, room.v, "b.test")
    else:
        assert (await checker.check_pdu(message.pdu, room.v, "b.test")).event_id == message.event_id


# --- hashes (redacted) ----------------------------------------------------------------------------

@pytest.mark.parametrize("version", ["1", "3", "4", "11", "12"])
async def test_tampered_content_keeps_the_redacted_copy(checker, version):
    room = Room(version)
    room.add(BOB, "m.room.member", {"membership": "join", "displayname": "Bob"}, BOB)
    message = room.build(BOB, "m.room.message", {"body": "the real text"})
    tampered = {**message.pdu, "content": {"body": "a forged text"}}
    checked, verdict = await intake(checker, room, tampered)
    assert checked.redacted and checked.event.content == {}
    assert checked.event_id == message.event_id
    assert verdict.accepted  # a redacted message still passes auth
    # A member event keeps what auth needs.
    rename = room.build(BOB, "m.room.member", {"membership": "join", "displayname": "Bobby"}, BOB)
    checked, verdict = await intake(checker, room, {**rename.pdu, "content": {"membership": "join", "displayname": "Evil"}})
    assert checked.redacted and checked.event.content == {"membership": "join"} and verdict.accepted
    # An untouched event is not flagged.
    assert not (await checker.check_pdu(message.pdu, room.v, "b.test")).redacted


@pytest.mark.parametrize("version", ["1", "4", "12"])
@pytest.mark.parametrize("field,value", [("origin_server_ts", NOW + 1), ("depth", 99), ("type", "m.room.topic")])
async def test_tampered_non_content_field_fails_the_signature(checker, version, field, value):
    room = Room(version)
    message = room.build(BOB, "m.room.message", {"body": "hi"})
    # Even with the content hash made to match again, the signature covers the field.
    tampered = resign({**message.pdu, field: value}, version, ())
    tampered["signatures"] = message.pdu["signatures"]
    with pytest.raises(InvalidPduSignature):
        await checker.check_pdu(tampered, room.v, "b.test")


# --- format (dropped) ----------------------------------------------------------------------------

@pytest.mark.parametrize("version", ["1", "12"])
async def test_oversized_event_is_dropped(checker, version):
    room = Room(version)
    message = room.build(BOB, "m.room.message", {"body": "hi"})
    huge = resign({**message.pdu, "content": {"body": "x" * 65536}}, version, ("b.test",))
    with pytest.raises(InvalidPduFormat, match="65536"):
        await checker.check_pdu(huge, room.v, "b.test")


@pytest.mark.parametrize("version", ["1", "12"])
async def test_too_many_prev_or_auth_events_are_dropped(checker, version):
    room = Room(version)
    ids = [f"$e{i}:b.test" for i in range(21)]
    many_prev = room.build(BOB, "m.room.message", {"body": "hi"}, prev=ids)
    with pytest.raises(InvalidPduFormat, match="prev_events"):
        await checker.check_pdu(many_prev.pdu, room.v, "b.test")
    fine = room.build(BOB, "m.room.message", {"body": "hi"}, prev=ids[:20])
    await checker.check_pdu(fine.pdu, room.v, "b.test")
    many_auth = room.build(BOB, "m.room.message", {"body": "hi"}, auth=ids[:11])
    with pytest.raises(InvalidPduFormat, match="auth_events"):
        await checker.check_pdu(many_auth.pdu, room.v, "b.test")


@pytest.mark.parametrize("version", ["5", "6", "11", "12"])
async def test_floats_are_dropped_from_v6(checker, version):
    room = Room(version)
    message = room.build(BOB, "m.room.message", {"body": "hi"})
    floaty = resign({**message.pdu, "content": {"body": "hi", "n": 0.5}}, version, ("b.test",))
    if V[version].auth.strict_canonical_json:
        with pytest.raises(InvalidPduFormat, match="float"):
            await checker.check_pdu(floaty, room.v, "b.test")
    else:
        assert (await checker.check_pdu(floaty, room.v, "b.test")).event.content["n"] == 0.5


async def test_malformed_and_misplaced_pdus_are_dropped(checker):
    room = Room("10")
    message = room.build(BOB, "m.room.message", {"body": "hi"})
    with pytest.raises(InvalidPduFormat):
        await checker.check_pdu({k: v for k, v in message.pdu.items() if k != "sender"}, room.v, "b.test")
    with pytest.raises(InvalidPduFormat):
        await checker.check_pdu("not an object", room.v, "b.test")
    with pytest.raises(InvalidPduFormat, match="belongs to"):
        await checker.check_pdu(message.pdu, room.v, "b.test", expected_room_id="!other:a.test")
    v1_room = Room("1")
    bad = {**v1_room.build(BOB, "m.room.message", {"body": "hi"}).pdu, "depth": "1"}
    with pytest.raises(InvalidPduFormat) as caught:
        await checker.check_pdu(bad, v1_room.v, "b.test")
    assert caught.value.event_id == bad["event_id"]  # v1-v2: the claimed ID, for logs


async def test_check_pdus_reports_each_pdu(checker):
    room = Room("12")
    good = room.build(BOB, "m.room.message", {"body": "ok"})
    unsigned = {**room.build(BOB, "m.room.message", {"body": "x"}).pdu, "signatures": {}}
    results = await checker.check_pdus([good.pdu, unsigned, {"type": 5}], room.v, "b.test")
    assert isinstance(results[0], CheckedPdu) and results[0].event_id == good.event_id
    assert isinstance(results[1], InvalidPduSignature)
    assert isinstance(results[2], InvalidPduFormat) and isinstance(results[2], PduDropped)


# --- check 4: auth events (rejected) --------------------------------------------------------------

@pytest.mark.parametrize("version", ["1", "4", "11", "12"])
async def test_event_failing_auth_against_its_auth_events_is_rejected(checker, version):
    room = Room(version)
    # Carol never joined; her server still signs her message properly.
    message = room.build(CAROL, "m.room.message", {"body": "let me in"})
    _, verdict = await intake(checker, room, message.pdu)
    assert verdict.outcome is Outcome.REJECTED and verdict.reason.startswith("6:")
    # Bob joined but cannot change the power levels.
    room.add(BOB, "m.room.member", {"membership": "join"}, BOB)
    coup = room.build(BOB, "m.room.power_levels", {"users": {BOB: 100}}, "")
    _, verdict = await intake(checker, room, coup.pdu)
    assert verdict.rejected and verdict.reason.startswith("8:")


@pytest.mark.parametrize("version", ["1", "4", "11", "12"])
async def test_event_citing_wrong_auth_events_is_rejected(checker, version):
    room = Room(version)
    bob_join = room.add(BOB, "m.room.member", {"membership": "join"}, BOB)
    right = room.auth_for(BOB, "m.room.message", {}, None)
    join_rules = room.state[("m.room.join_rules", "")].event_id
    # An auth event the selection does not pick for a message.
    extra = room.build(BOB, "m.room.message", {"body": "hi"}, auth=right + [join_rules])
    checked, verdict = await intake(checker, room, extra.pdu)
    assert verdict.rejected and verdict.reason.startswith("3.2")
    # Two events for one (type, state_key): bob's join and a later member event of his.
    rename = room.add(BOB, "m.room.member", {"membership": "join", "displayname": "B"}, BOB)
    dup = room.build(BOB, "m.room.message", {"body": "hi"}, auth=right + [rename.event_id])
    checked, verdict = await intake(checker, room, dup.pdu)
    assert verdict.rejected and verdict.reason.startswith("3.1")
    # An auth event from another room.
    other = Room(version, room_id="!other:a.test", create_extra={"m.federate": True})
    other_room_event = other.state[("m.room.power_levels", "")]
    assert other.room_id != room.room_id
    room.events[other_room_event.event_id] = other_room_event
    pl = room.state[("m.room.power_levels", "")].event_id
    foreign = room.build(BOB, "m.room.message", {"body": "hi"},
                         auth=[e for e in right if e != pl] + [other_room_event.event_id])
    checked, verdict = await intake(checker, room, foreign.pdu)
    assert verdict.rejected and verdict.reason.startswith("3.5")
    # Leaving out the create event before v12 (it is implied only from v12).
    if version != "12":
        no_create = room.build(BOB, "m.room.message", {"body": "hi"},
                               auth=[e for e in right if e != room.create.event_id])
        checked, verdict = await intake(checker, room, no_create.pdu)
        assert verdict.rejected and "create event" in verdict.reason
    # A rejected auth event rejects the event too.
    ok = room.build(BOB, "m.room.message", {"body": "hi"}, auth=right)
    checked, _ = await intake(checker, room, ok.pdu)
    assert check_auth_against_auth_events(checked.event, room.events).accepted
    verdict = check_auth_against_auth_events(checked.event, room.events, {bob_join.event_id})
    assert verdict.rejected and verdict.reason.startswith("3.3")


async def test_unknown_auth_events_must_be_fetched_first(checker):
    room = Room("12")
    room.add(BOB, "m.room.member", {"membership": "join"}, BOB)
    message = room.build(BOB, "m.room.message", {"body": "hi"})
    checked = await checker.check_pdu(message.pdu, room.v, "b.test")
    known = {k: v for k, v in room.events.items() if v.type != "m.room.power_levels" and v.type != "m.room.create"}
    missing = missing_auth_event_ids(checked.event, known)
    assert set(missing) == {room.create.event_id, room.state[("m.room.power_levels", "")].event_id}
    verdict = check_auth_against_auth_events(checked.event, known)
    assert verdict.rejected and "unknown auth events" in verdict.reason


# --- checks 5 and 6: the caller's states -----------------------------------------------------------

async def test_ban_evasion_is_soft_failed(checker):
    """The spec's example: B bans X; X's event C on the branch before B is valid there (it
    passes checks 1-5) but fails against the current state: soft-failed."""
    room = Room("12")
    room.add(BOB, "m.room.member", {"membership": "join"}, BOB)
    state_at_a = dict(room.state)
    a = room.last
    room.add(ALICE, "m.room.member", {"membership": "ban"}, BOB)
    c = room.build(BOB, "m.room.message", {"body": "evading"}, prev=a,
                   auth=[e.event_id for e in (state_at_a[("m.room.power_levels", "")], state_at_a[("m.room.member", BOB)])])
    checked, verdict = await intake(checker, room, c.pdu)
    assert verdict.accepted  # check 4 only sees C's own auth events
    assert check_against_state(checked.event, state_at_a, room.state).outcome is Outcome.SOFT_FAILED
    assert check_against_state(checked.event, state_at_a).accepted
    assert check_against_state(checked.event, room.state).rejected
