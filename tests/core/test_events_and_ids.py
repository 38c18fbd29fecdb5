"""Event parsing and IDs per format, and the identifier grammar."""

import pytest
from signedjson.key import generate_signing_key, get_verify_key

from homeserver.core import ids
from homeserver.core.builder import EventTooLarge, build_event
from homeserver.core.events import InvalidEvent, make_event, parse_pdu, stored_event
from homeserver.core.hashing import check_content_hash
from homeserver.core.room_versions import KNOWN_ROOM_VERSIONS as V
from homeserver.core.room_versions import UnsupportedRoomVersion, get_room_version
from homeserver.core.signing import verify_event_signature

KEY = generate_signing_key("k1")


def build(version, **kw):
    args = dict(room_id="!r:example.org", sender="@u:example.org", event_type="m.room.message",
                content={"body": "hi"}, state_key=None, prev_events=["$p"] if V[version].event_format.value > 1 else [],
                auth_events=[], depth=2, origin_server_ts=5, server_name="example.org", signing_key=KEY)
    args.update(kw)
    return build_event(V[version], **args)


@pytest.mark.parametrize("version", [str(v) for v in range(1, 13)])
def test_built_events_verify_and_have_the_versions_id_format(version):
    event = build(version)
    assert check_content_hash(event.pdu)
    verify_event_signature(event.pdu, "example.org", get_verify_key(KEY), V[version])
    if version in ("1", "2"):
        assert event.event_id.startswith("$") and event.event_id.endswith(":example.org")
    elif version == "3":
        assert ":" not in event.event_id and len(event.event_id) == 44
    else:
        assert ":" not in event.event_id and "+" not in event.event_id and "/" not in event.event_id
    # Parsing the PDU again gives the same event.
    assert parse_pdu(event.pdu, V[version]).event_id == event.event_id


def test_v12_create_event_names_the_room():
    event = build("12", room_id=None, event_type="m.room.create", state_key="", content={"room_version": "12"},
                  prev_events=[])
    assert "room_id" not in event.pdu
    assert event.room_id == "!" + event.event_id[1:]
    with pytest.raises(ValueError):
        build("11", room_id=None, event_type="m.room.create", state_key="", content={}, prev_events=[])


def test_v11_moves_redacts_into_content():
    event = build("11", event_type="m.room.redaction", content={}, redacts="$target")
    assert event.content["redacts"] == "$target" and event.redacts == "$target"
    old = build("10", event_type="m.room.redaction", content={}, redacts="$target")
    assert "redacts" not in old.content and old.redacts == "$target"


@pytest.mark.parametrize("version", [str(v) for v in range(1, 13)])
def test_a_stored_pdu_gives_the_event_parse_pdu_gives(version):
    """stored_event trusts the stored ID instead of computing it: the Event is the same."""
    state = build(version, event_type="m.room.member", state_key="@u:example.org", content={"membership": "join"},
                  auth_events=["$a", "$b"])
    redaction = build(version, event_type="m.room.redaction", content={}, redacts="$target")
    events = [build(version), state, redaction]
    if version == "12":
        events.append(build("12", room_id=None, event_type="m.room.create", state_key="",
                            content={"room_version": "12"}, prev_events=[]))
    for event in events:
        with_unsigned = {**event.pdu, "unsigned": {"age_ts": 5}}
        for pdu in (event.pdu, with_unsigned):
            assert stored_event(pdu, V[version], event.event_id) == parse_pdu(pdu, V[version])


def test_origin_dropped_from_v11():
    assert "origin" in build("10").pdu
    assert "origin" not in build("11").pdu


def test_size_limit():
    with pytest.raises(EventTooLarge):
        build("12", content={"body": "x" * 70000})


@pytest.mark.parametrize("mutate,message", [
    (lambda p: p.pop("type"), "type"),
    (lambda p: p.update(sender="not-a-user"), "sender"),
    (lambda p: p.update(content=[]), "content"),
    (lambda p: p.update(depth="1"), "depth"),
    (lambda p: p.update(depth=-1), "depth"),
    (lambda p: p.update(prev_events="x"), "prev_events"),
    (lambda p: p.update(hashes={}), "hashes"),
    (lambda p: p.update(type="t" * 300), "type"),
    (lambda p: p.update(content={"n": 1.5}), "float"),
    (lambda p: p.update(content={"n": 2**60}), "integer"),
])
def test_parse_rejects_malformed_pdus(mutate, message):
    pdu = dict(build("12").pdu)
    mutate(pdu)
    with pytest.raises(InvalidEvent, match=message):
        parse_pdu(pdu, V["12"])


def test_floats_allowed_before_v6():
    pdu = dict(build("5").pdu)
    pdu["content"] = {"n": 1.5}
    assert parse_pdu(pdu, V["5"]).content == {"n": 1.5}


def test_make_event_is_deterministic_for_v1():
    a = make_event(V["1"], type="m.room.message", sender="@a:d", depth=3)
    b = make_event(V["1"], type="m.room.message", sender="@a:d", depth=3)
    assert a.event_id == b.event_id


def test_room_versions_table():
    assert get_room_version("12").auth.privileged_room_creators
    assert not get_room_version("11").auth.privileged_room_creators
    assert get_room_version("7").auth.knock_join_rule and not get_room_version("6").auth.knock_join_rule
    assert get_room_version("10").auth.enforce_int_power_levels and not get_room_version("9").auth.enforce_int_power_levels
    with pytest.raises(UnsupportedRoomVersion):
        get_room_version("13")


@pytest.mark.parametrize("user_id,valid", [
    ("@alice:example.org", True), ("@a.b_c=d-e/f+g:example.org:8448", True), ("@alice:[::1]:8448", True),
    ("@alice:1.2.3.4", True), ("alice:example.org", False), ("@alice", False), ("@alice:", False),
    ("@alice:exa mple.org", False), ("@alice:example.org:99999", False), ("@" + "a" * 260 + ":d", False),
])
def test_user_ids(user_id, valid):
    assert ids.is_valid_user_id(user_id) is valid


def test_localparts():
    assert ids.is_valid_localpart("alice.b-c_d=e/f+g")
    assert not ids.is_valid_localpart("Alice")
    assert not ids.is_valid_localpart("")
    assert ids.is_valid_localpart("Alice", historical=True)
    assert not ids.is_valid_localpart("a:b", historical=True)
    assert ids.parse_user_id("@Old:d").localpart == "Old"
    with pytest.raises(ids.InvalidId):
        ids.parse_user_id("@Old:d", historical=False)


def test_room_and_event_ids_and_aliases():
    assert ids.is_valid_room_id("!abc:example.org") and ids.is_valid_room_id("!hashonly")
    assert not ids.is_valid_room_id("#abc:example.org") and not ids.is_valid_room_id("!")
    assert ids.is_valid_event_id("$abc") and not ids.is_valid_event_id("abc")
    assert str(ids.parse_room_alias("#room:example.org")) == "#room:example.org"
    with pytest.raises(ids.InvalidId):
        ids.parse_room_alias("#:example.org")
    assert ids.server_name_of("!abc:example.org") == "example.org"
    assert ids.server_name_of("!hashonly") is None
