"""Rooms over real HTTP: createRoom, sending, state, membership, redaction, /messages."""

import pytest
from signedjson.key import get_verify_key

from homeserver.core.events import parse_pdu
from homeserver.core.hashing import check_content_hash
from homeserver.core.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.core.signing import verify_event_signature

V3 = "/_matrix/client/v3"


async def create(c, **body):
    status, resp = await c.post(f"{V3}/createRoom", body)
    assert status == 200, resp
    return resp["room_id"]


async def send(c, room, text="hello", txn=None, event_type="m.room.message"):
    import uuid

    status, resp = await c.put(f"{V3}/rooms/{room}/send/{event_type}/{txn or uuid.uuid4().hex}",
                               {"msgtype": "m.text", "body": text})
    return status, resp


async def state_types(c, room):
    status, events = await c.get(f"{V3}/rooms/{room}/messages?dir=f&limit=100")
    assert status == 200, events
    return [(e["type"], e.get("state_key")) for e in events["chunk"]]


# --- createRoom ---------------------------------------------------------------------------------

async def test_private_chat_initial_events_in_synapse_order(alice):
    room = await create(alice, name="Name", topic="Topic", invite=["@bob:test.local"])
    assert await state_types(alice, room) == [
        ("m.room.create", ""), ("m.room.member", "@alice:test.local"), ("m.room.power_levels", ""),
        ("m.room.join_rules", ""), ("m.room.history_visibility", ""), ("m.room.guest_access", ""),
        ("m.room.name", ""), ("m.room.topic", ""), ("m.room.member", "@bob:test.local"),
    ]
    status, rules = await alice.get(f"{V3}/rooms/{room}/state/m.room.join_rules/")
    assert status == 200 and rules == {"join_rule": "invite"}
    status, levels = await alice.get(f"{V3}/rooms/{room}/state/m.room.power_levels")
    assert status == 200
    assert levels["invite"] == 0 and levels["state_default"] == 50 and levels["historical"] == 100
    # v12 (the default): the creator has infinite power and is not listed.
    assert levels["users"] == {}


async def test_public_chat_has_no_guest_access_and_public_join_rule(alice):
    room = await create(alice, preset="public_chat")
    types = await state_types(alice, room)
    assert ("m.room.guest_access", "") not in types
    status, rules = await alice.get(f"{V3}/rooms/{room}/state/m.room.join_rules/")
    assert rules == {"join_rule": "public"}
    # visibility=public without a preset also means public_chat.
    room2 = await create(alice, visibility="public")
    status, rules = await alice.get(f"{V3}/rooms/{room2}/state/m.room.join_rules/")
    assert rules == {"join_rule": "public"}


async def test_v12_room_id_is_the_create_event_hash(alice):
    room = await create(alice)
    assert ":" not in room
    status, create_event = await alice.get(f"{V3}/rooms/{room}/state/m.room.create/?format=event")
    assert status == 200
    assert create_event["event_id"] == "$" + room[1:]
    assert "creator" not in create_event["content"] and create_event["content"]["room_version"] == "12"


async def test_older_versions_have_server_room_ids_and_creator(alice):
    room = await create(alice, room_version="10")
    assert room.endswith(":test.local")
    status, content = await alice.get(f"{V3}/rooms/{room}/state/m.room.create/")
    assert content == {"creator": "@alice:test.local", "room_version": "10"}
    status, levels = await alice.get(f"{V3}/rooms/{room}/state/m.room.power_levels/")
    assert levels["users"] == {"@alice:test.local": 100}


async def test_trusted_private_chat_invitees_get_ops(alice):
    room11 = await create(alice, room_version="11", preset="trusted_private_chat", invite=["@bob:test.local"])
    status, levels = await alice.get(f"{V3}/rooms/{room11}/state/m.room.power_levels/")
    assert levels["users"]["@bob:test.local"] == 100
    room12 = await create(alice, preset="trusted_private_chat", invite=["@bob:test.local"])
    status, content = await alice.get(f"{V3}/rooms/{room12}/state/m.room.create/")
    assert content["additional_creators"] == ["@bob:test.local"]


async def test_create_options_and_overrides(alice):
    room = await create(alice, room_version="11", power_level_content_override={"events_default": 10},
                        creation_content={"m.federate": False, "creator": "@mallory:test.local"},
                        initial_state=[{"type": "m.room.history_visibility", "content": {"history_visibility": "joined"}},
                                       {"type": "org.example.custom", "state_key": "k", "content": {"a": 1}}])
    status, levels = await alice.get(f"{V3}/rooms/{room}/state/m.room.power_levels/")
    assert levels["events_default"] == 10
    status, create_content = await alice.get(f"{V3}/rooms/{room}/state/m.room.create/")
    assert create_content == {"m.federate": False, "room_version": "11"}
    status, vis = await alice.get(f"{V3}/rooms/{room}/state/m.room.history_visibility/")
    assert vis == {"history_visibility": "joined"}
    status, custom = await alice.get(f"{V3}/rooms/{room}/state/org.example.custom/k")
    assert custom == {"a": 1}


@pytest.mark.parametrize("body,status,errcode", [
    ({"room_version": "99"}, 400, "M_UNSUPPORTED_ROOM_VERSION"),
    ({"preset": "party"}, 400, "M_BAD_JSON"),
    ({"visibility": "secret"}, 400, "M_INVALID_PARAM"),
    ({"invite": "@bob:test.local"}, 400, "M_BAD_JSON"),
    ({"invite": ["not-a-user"]}, 400, "M_INVALID_PARAM"),
    ({"initial_state": [{"type": "m.room.member", "state_key": "@x:y", "content": {}}]}, 400, "M_BAD_JSON"),
    ({"initial_state": {"not": "a list"}}, 400, "M_BAD_JSON"),
    ({"name": 5}, 400, "M_BAD_JSON"),
    ({"power_level_content_override": []}, 400, "M_BAD_JSON"),
])
async def test_create_room_bad_input(alice, body, status, errcode):
    got, resp = await alice.post(f"{V3}/createRoom", body)
    assert (got, resp["errcode"]) == (status, errcode)


async def test_create_room_needs_auth(client):
    status, body = await client.post(f"{V3}/createRoom", {})
    assert status == 401 and body["errcode"] == "M_MISSING_TOKEN"


async def test_every_stored_event_verifies(alice, services, db, signing_key):
    for version in ("1", "3", "5", "11", "12"):
        room = await create(alice, room_version=version, name="n")
        await send(alice, room)
    rows = await db.fetch("SELECT e.event_id, e.pdu, r.room_version FROM events e JOIN rooms r USING (room_id)")
    assert len(rows) >= 5 * 7
    for row in rows:
        version = KNOWN_ROOM_VERSIONS[row["room_version"]]
        assert check_content_hash(row["pdu"]), row["event_id"]
        verify_event_signature(row["pdu"], "test.local", get_verify_key(signing_key), version)
        assert parse_pdu(row["pdu"], version).event_id == row["event_id"]


# --- sending -----------------------------------------------------------------------------------

async def test_send_is_idempotent_per_device_and_txn(client, alice):
    room = await create(alice)
    status, first = await send(alice, room, txn="t1")
    status, again = await send(alice, room, "different body", txn="t1")
    assert status == 200 and again["event_id"] == first["event_id"]
    # Another device of the same user with the same txn ID sends a new event.
    status, other_login = await client.post(f"{V3}/login", {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"}, "password": "s3cret-pass"})
    status, other = await send(alice.with_token(other_login["access_token"]), room, txn="t1")
    assert other["event_id"] != first["event_id"]
    # The sending device sees its transaction ID; others do not.
    status, event = await alice.get(f"{V3}/rooms/{room}/event/{first['event_id']}")
    assert event["unsigned"]["transaction_id"] == "t1"
    status, event = await alice.with_token(other_login["access_token"]).get(f"{V3}/rooms/{room}/event/{first['event_id']}")
    assert "transaction_id" not in event["unsigned"]


async def test_non_member_and_unknown_room(alice, bob):
    room = await create(alice)
    status, body = await send(bob, room)
    assert status == 403 and body["errcode"] == "M_FORBIDDEN"
    status, body = await send(alice, "!nope:test.local")
    assert status == 404 and body["errcode"] == "M_NOT_FOUND"
    status, body = await bob.get(f"{V3}/rooms/{room}/messages")
    assert status == 403


async def test_send_bad_content(alice):
    room = await create(alice)
    status, body = await alice.put(f"{V3}/rooms/{room}/send/m.room.message/t", raw=b"[1]")
    assert status == 400 and body["errcode"] == "M_BAD_JSON"
    status, body = await alice.put(f"{V3}/rooms/{room}/send/m.room.message/t2", {"body": "x" * 70000})
    assert status == 413 and body["errcode"] == "M_TOO_LARGE"
    status, body = await alice.put(f"{V3}/rooms/{room}/send/m.room.message/t3", {"n": 1.5})
    assert status == 400 and body["errcode"] == "M_BAD_JSON"
    # Nothing of the refused sends was stored.
    status, page = await alice.get(f"{V3}/rooms/{room}/messages?dir=b&limit=1")
    assert page["chunk"][0]["type"] != "m.room.message"


# --- state -----------------------------------------------------------------------------------------

async def test_state_put_get_and_power(alice, bob):
    room = await create(alice, preset="public_chat")
    status, body = await alice.put(f"{V3}/rooms/{room}/state/m.room.name", {"name": "First"})
    assert status == 200 and body["event_id"].startswith("$")
    # The same content again is not a new event.
    status, again = await alice.put(f"{V3}/rooms/{room}/state/m.room.name/", {"name": "First"})
    assert again["event_id"] == body["event_id"]
    status, name = await alice.get(f"{V3}/rooms/{room}/state/m.room.name/")
    assert name == {"name": "First"}
    status, body = await bob.post(f"{V3}/rooms/{room}/join", {})
    assert status == 200
    status, body = await bob.put(f"{V3}/rooms/{room}/state/m.room.name/", {"name": "Bob's"})
    assert status == 403 and body["errcode"] == "M_FORBIDDEN"
    status, body = await bob.put(f"{V3}/rooms/{room}/state/org.example.s/@alice:test.local", {"a": 1})
    assert status == 403
    status, body = await alice.get(f"{V3}/rooms/{room}/state/m.room.avatar/")
    assert status == 404 and body["errcode"] == "M_NOT_FOUND"
    status, events = await alice.get(f"{V3}/rooms/{room}/state")
    assert {(e["type"], e["state_key"]) for e in events} >= {("m.room.create", ""), ("m.room.name", ""),
                                                             ("m.room.member", "@bob:test.local")}
    status, body = await alice.put(f"{V3}/rooms/{room}/state/m.room.name/" + "k" * 300, {"name": "x"})
    assert status == 400


# --- membership ----------------------------------------------------------------------------------------

async def test_room_life_invite_join_kick_ban_unban_leave(alice, bob, client):
    room = await create(alice)
    status, body = await bob.post(f"{V3}/rooms/{room}/join", {})
    assert status == 403 and body["errcode"] == "M_FORBIDDEN"  # invite-only
    status, _ = await alice.post(f"{V3}/rooms/{room}/invite", {"user_id": "@bob:test.local"})
    assert status == 200
    status, body = await bob.post(f"{V3}/join/{room}", {})
    assert status == 200 and body == {"room_id": room}
    status, joined = await bob.get(f"{V3}/joined_rooms")
    assert joined == {"joined_rooms": [room]}
    status, members = await alice.get(f"{V3}/rooms/{room}/joined_members")
    assert members["joined"]["@bob:test.local"] == {"display_name": "bob", "avatar_url": None}
    status, sent = await send(bob, room, "hi alice")
    assert status == 200
    # Bob cannot kick Alice (power 0).
    status, body = await bob.post(f"{V3}/rooms/{room}/kick", {"user_id": "@alice:test.local"})
    assert status == 403
    status, _ = await alice.post(f"{V3}/rooms/{room}/kick", {"user_id": "@bob:test.local", "reason": "bye"})
    assert status == 200
    status, kicked = await alice.get(f"{V3}/rooms/{room}/state/m.room.member/@bob:test.local")
    assert kicked == {"membership": "leave", "reason": "bye"}
    status, body = await send(bob, room)
    assert status == 403
    status, _ = await alice.post(f"{V3}/rooms/{room}/invite", {"user_id": "@bob:test.local"})
    status, _ = await bob.post(f"{V3}/rooms/{room}/join", {})
    assert status == 200
    status, _ = await alice.post(f"{V3}/rooms/{room}/ban", {"user_id": "@bob:test.local"})
    assert status == 200
    status, body = await alice.post(f"{V3}/rooms/{room}/invite", {"user_id": "@bob:test.local"})
    assert status == 403
    status, _ = await alice.post(f"{V3}/rooms/{room}/unban", {"user_id": "@bob:test.local"})
    assert status == 200
    status, body = await alice.post(f"{V3}/rooms/{room}/unban", {"user_id": "@bob:test.local"})
    assert status == 403  # not banned any more
    status, members = await alice.get(f"{V3}/rooms/{room}/members?membership=leave")
    assert [m["state_key"] for m in members["chunk"]] == ["@bob:test.local"]
    status, members = await alice.get(f"{V3}/rooms/{room}/members?not_membership=leave")
    assert [m["state_key"] for m in members["chunk"]] == ["@alice:test.local"]
    status, _ = await alice.post(f"{V3}/rooms/{room}/leave", {})
    assert status == 200
    status, joined = await alice.get(f"{V3}/joined_rooms")
    assert joined == {"joined_rooms": []}
    status, body = await bob.post(f"{V3}/rooms/{room}/forget", {})
    assert status == 200
    status, body = await alice.post(f"{V3}/rooms/{room}/forget", {})
    assert status == 200 and body == {}
    # A former member still reads the state as it was when she left.
    status, events = await alice.get(f"{V3}/rooms/{room}/state")
    assert status == 200
    assert any(e["type"] == "m.room.member" and e["state_key"] == "@alice:test.local"
               and e["content"]["membership"] == "leave" for e in events)


async def test_membership_bad_input(alice):
    room = await create(alice)
    status, body = await alice.post(f"{V3}/rooms/{room}/invite", {})
    assert status == 400 and body["errcode"] == "M_MISSING_PARAM"
    status, body = await alice.post(f"{V3}/rooms/{room}/invite", {"user_id": "bob"})
    assert status == 400 and body["errcode"] == "M_INVALID_PARAM"
    status, body = await alice.post(f"{V3}/rooms/{room}/kick", {"user_id": "@nobody:test.local"})
    assert status == 403
    status, body = await alice.post(f"{V3}/rooms/!unknown:test.local/join", {})
    assert status == 404
    status, body = await alice.post(f"{V3}/join/not-a-room", {})
    assert status == 400
    status, body = await alice.get(f"{V3}/rooms/{room}/members?membership=wave")
    assert status == 400 and body["errcode"] == "M_INVALID_PARAM"
    status, body = await alice.post(f"{V3}/rooms/{room}/forget", {})
    assert status == 400  # still joined


async def test_knock(alice, bob):
    room = await create(alice, room_version="7", initial_state=[{"type": "m.room.join_rules", "content": {"join_rule": "knock"}}])
    status, body = await bob.post(f"{V3}/knock/{room}", {"reason": "let me in"})
    assert status == 200, body
    status, member = await alice.get(f"{V3}/rooms/{room}/state/m.room.member/@bob:test.local")
    assert member["membership"] == "knock" and member["reason"] == "let me in"
    old = await create(alice, room_version="6")
    status, body = await bob.post(f"{V3}/knock/{old}", {})
    assert status == 403


# --- redaction --------------------------------------------------------------------------------------------

async def test_redaction(alice, bob):
    room = await create(alice, preset="public_chat")
    await bob.post(f"{V3}/rooms/{room}/join", {})
    status, sent = await send(bob, room, "oops")
    status, alice_msg = await send(alice, room, "alice's")
    status, body = await bob.put(f"{V3}/rooms/{room}/redact/{alice_msg['event_id']}/r1", {})
    assert status == 403
    status, redaction = await bob.put(f"{V3}/rooms/{room}/redact/{sent['event_id']}/r2", {"reason": "typo"})
    assert status == 200
    status, again = await bob.put(f"{V3}/rooms/{room}/redact/{sent['event_id']}/r2", {"reason": "typo"})
    assert again["event_id"] == redaction["event_id"]
    status, event = await alice.get(f"{V3}/rooms/{room}/event/{sent['event_id']}")
    assert event["content"] == {}
    assert event["unsigned"]["redacted_because"]["event_id"] == redaction["event_id"]
    assert event["unsigned"]["redacted_by"] == redaction["event_id"]  # as Synapse gives it
    assert event["unsigned"]["redacted_because"]["content"]["reason"] == "typo"
    # The admin (Alice) may redact anyone's events.
    status, _ = await alice.put(f"{V3}/rooms/{room}/redact/{alice_msg['event_id']}/r3", {})
    assert status == 200
    status, body = await alice.put(f"{V3}/rooms/{room}/redact/$unknown/r4", {})
    assert status == 404


# --- /messages ------------------------------------------------------------------------------------------------

async def test_messages_pagination_both_ways(alice):
    room = await create(alice)
    sent = [(await send(alice, room, f"m{i}"))[1]["event_id"] for i in range(7)]
    status, page1 = await alice.get(f"{V3}/rooms/{room}/messages?dir=b&limit=3")
    assert status == 200
    assert [e["event_id"] for e in page1["chunk"]] == sent[::-1][:3]
    status, page2 = await alice.get(f"{V3}/rooms/{room}/messages?dir=b&limit=3&from={page1['end']}")
    assert [e["event_id"] for e in page2["chunk"]] == sent[::-1][3:6]
    assert page2["start"] == page1["end"]
    status, forward = await alice.get(f"{V3}/rooms/{room}/messages?dir=f&limit=2&from={page2['end']}")
    # Forward from a backward page's end continues just after its last event (sent[1]).
    assert [e["event_id"] for e in forward["chunk"]] == [sent[2], sent[3]]
    status, filtered = await alice.get(f"{V3}/rooms/{room}/messages?dir=b&limit=50&filter=" +
                                       '{"types":["m.room.name","m.room.create"]}')
    assert [e["type"] for e in filtered["chunk"]] == ["m.room.create"]
    # A page that found events has an `end` (as Synapse, and sytest, expect), even a short
    # one; the page after it is empty and has none: no more pages.
    status, last = await alice.get(f"{V3}/rooms/{room}/messages?dir=b&limit=50&from={filtered['end']}")
    assert status == 200 and last["chunk"] == [] and "end" not in last
    status, body = await alice.get(f"{V3}/rooms/{room}/messages?dir=x")
    assert status == 400 and body["errcode"] == "M_INVALID_PARAM"
    status, body = await alice.get(f"{V3}/rooms/{room}/messages?from=garbage")
    assert status == 400
    status, body = await alice.get(f"{V3}/rooms/{room}/messages?filter=nojson")
    assert status == 400 and body["errcode"] == "M_NOT_JSON"


@pytest.mark.parametrize("visibility,bob_sees_earlier", [("shared", True), ("joined", False), ("invited", False)])
async def test_history_visibility(alice, bob, visibility, bob_sees_earlier):
    room = await create(alice, preset="public_chat",
                        initial_state=[{"type": "m.room.history_visibility", "content": {"history_visibility": visibility}}])
    status, early = await send(alice, room, "before bob")
    await bob.post(f"{V3}/rooms/{room}/join", {})
    status, late = await send(alice, room, "after bob")
    status, page = await bob.get(f"{V3}/rooms/{room}/messages?dir=b&limit=50")
    ids = [e["event_id"] for e in page["chunk"]]
    assert late["event_id"] in ids
    assert (early["event_id"] in ids) is bob_sees_earlier
    status, body = await bob.get(f"{V3}/rooms/{room}/event/{early['event_id']}")
    assert (status == 200) is bob_sees_earlier


@pytest.mark.parametrize("version,join_rule", [("8", "restricted"), ("10", "knock_restricted"), ("12", "restricted")])
async def test_restricted_join(alice, bob, client, version, join_rule):
    space = await create(alice, preset="public_chat")
    room = await create(alice, room_version=version, initial_state=[{"type": "m.room.join_rules", "content": {
        "join_rule": join_rule, "allow": [{"type": "m.room_membership", "room_id": space}]}}])
    # Not in the allowed room: refused.
    status, body = await bob.post(f"{V3}/rooms/{room}/join", {})
    assert status == 403 and body["errcode"] == "M_FORBIDDEN"
    await bob.post(f"{V3}/rooms/{space}/join", {})
    status, body = await bob.post(f"{V3}/rooms/{room}/join", {})
    assert status == 200, body
    status, member = await alice.get(f"{V3}/rooms/{room}/state/m.room.member/@bob:test.local")
    assert member["membership"] == "join"
    assert member["join_authorised_via_users_server"] == "@alice:test.local"


async def test_restricted_join_not_in_old_versions(alice, bob):
    space = await create(alice, preset="public_chat")
    await bob.post(f"{V3}/rooms/{space}/join", {})
    room = await create(alice, room_version="7", initial_state=[{"type": "m.room.join_rules", "content": {
        "join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": space}]}}])
    status, body = await bob.post(f"{V3}/rooms/{room}/join", {})
    assert status == 403  # v7 does not know the restricted join rule: nobody joins uninvited


async def test_members_at_a_point_in_time(alice, bob):
    room = await create(alice, preset="public_chat")
    status, before_bob = await alice.get(f"{V3}/rooms/{room}/messages?dir=b&limit=1")
    await bob.post(f"{V3}/rooms/{room}/join", {})
    status, now = await alice.get(f"{V3}/rooms/{room}/members")
    assert {m["state_key"] for m in now["chunk"]} == {"@alice:test.local", "@bob:test.local"}
    # At the token just after the room's first page (before Bob joined): Alice only.
    first_event = before_bob["chunk"][0]
    status, then = await alice.get(f"{V3}/rooms/{room}/context/{first_event['event_id']}?limit=0")
    status, at = await alice.get(f"{V3}/rooms/{room}/members?at={then['end']}")
    assert status == 200, at
    assert {m["state_key"] for m in at["chunk"]} == {"@alice:test.local"}
    status, body = await alice.get(f"{V3}/rooms/{room}/members?at=garbage")
    assert status == 400


async def test_redacted_content_is_erased_after_the_window(alice, services, db, signing_key):
    room = await create(alice)
    status, sent = await send(alice, room, "regrettable")
    await alice.put(f"{V3}/rooms/{room}/redact/{sent['event_id']}/r1", {})
    # Inside the window the original stays stored (reads still show it redacted).
    assert await services.retention.prune_redacted() == 0
    stored = await db.fetchval("SELECT pdu FROM events WHERE event_id = $1", sent["event_id"])
    assert stored["content"]["body"] == "regrettable"
    # Past the window it is erased; the redacted PDU still verifies.
    await db.execute("UPDATE redactions SET received_ts = received_ts - 8 * 24 * 3600 * 1000")
    assert await services.retention.prune_redacted() == 1
    stored = await db.fetchval("SELECT pdu FROM events WHERE event_id = $1", sent["event_id"])
    assert stored["content"] == {}
    verify_event_signature(stored, "test.local", get_verify_key(signing_key), KNOWN_ROOM_VERSIONS["12"])
    assert await services.retention.prune_redacted() == 0
    status, event = await alice.get(f"{V3}/rooms/{room}/event/{sent['event_id']}")
    assert event["content"] == {} and "redacted_because" in event["unsigned"]


# --- Synapse's room-side behaviours that sytest checks ------------------------------------------

async def test_joining_twice_sends_no_second_event(alice, bob):
    room = await create(alice, preset="public_chat")
    status, _ = await bob.post(f"{V3}/rooms/{room}/join", {})
    assert status == 200
    status, before = await bob.get(f"{V3}/rooms/{room}/messages?dir=b&limit=100")
    status, _ = await bob.post(f"{V3}/join/{room}", {})
    assert status == 200
    status, after = await bob.get(f"{V3}/rooms/{room}/messages?dir=b&limit=100")
    assert [e["event_id"] for e in after["chunk"]] == [e["event_id"] for e in before["chunk"]]
    # A changed content (a reason) is a new event.
    status, _ = await bob.post(f"{V3}/join/{room}", {"reason": "again"})
    status, member = await alice.get(f"{V3}/rooms/{room}/state/m.room.member/@bob:test.local")
    assert member["reason"] == "again"


async def test_join_by_id_or_alias_takes_the_body_as_content(alice, bob):
    room = await create(alice, preset="public_chat")
    status, body = await bob.post(f"{V3}/join/{room}", {"foo": "bar", "membership": "leave"})
    assert status == 200, body
    status, member = await alice.get(f"{V3}/rooms/{room}/state/m.room.member/@bob:test.local")
    assert member["foo"] == "bar" and member["membership"] == "join"


async def test_post_send_without_transaction_id(alice):
    room = await create(alice)
    status, first = await alice.post(f"{V3}/rooms/{room}/send/m.room.message", {"msgtype": "m.text", "body": "a"})
    assert status == 200, first
    status, second = await alice.post(f"{V3}/rooms/{room}/send/m.room.message", {"msgtype": "m.text", "body": "a"})
    assert status == 200 and second["event_id"] != first["event_id"]  # no transaction: a new event each time
    status, event = await alice.get(f"{V3}/rooms/{room}/event/{first['event_id']}")
    assert event["content"]["body"] == "a"


async def test_messages_lazy_loads_the_senders_members(alice):
    room = await create(alice)
    await send(alice, room, "one")
    status, page = await alice.get(f"{V3}/rooms/{room}/messages?dir=b&limit=1&filter=" + '{"lazy_load_members":true}')
    assert status == 200
    assert [(e["type"], e["state_key"]) for e in page["state"]] == [("m.room.member", "@alice:test.local")]
    status, page = await alice.get(f"{V3}/rooms/{room}/messages?dir=b&limit=1")
    assert "state" not in page


async def test_messages_of_a_former_member_start_at_their_departure(alice, bob):
    room = await create(alice, preset="public_chat")
    await bob.post(f"{V3}/rooms/{room}/join", {})
    await send(alice, room, "before")
    await bob.post(f"{V3}/rooms/{room}/leave", {})
    await send(alice, room, "after")
    status, synced = await bob.get(f"{V3}/sync")
    for query in ("", f"&from={synced['next_batch']}"):
        status, page = await bob.get(f"{V3}/rooms/{room}/messages?dir=b&limit=2{query}")
        assert status == 200, page
        assert [e["content"].get("membership") or e["content"].get("body") for e in page["chunk"]] == ["leave", "before"]


async def test_numeric_room_version_is_bad_json(alice):
    status, body = await alice.post(f"{V3}/createRoom", {"room_version": 1})
    assert status == 400 and body["errcode"] == "M_BAD_JSON"


async def test_context_and_redaction_refusals(alice, bob):
    room = await create(alice)
    other = await create(bob)
    status, sent = await send(alice, room, "private")
    status, body = await bob.get(f"{V3}/rooms/{room}/context/{sent['event_id']}")
    assert status == 403 and body["errcode"] == "M_FORBIDDEN"
    status, body = await bob.put(f"{V3}/rooms/{other}/redact/{sent['event_id']}/r1", {})
    assert status == 400


async def test_rejecting_a_local_invite_into_a_room_everyone_left(alice, bob):
    room = await create(alice, invite=["@bob:test.local"])
    await alice.post(f"{V3}/rooms/{room}/leave", {})
    status, body = await bob.post(f"{V3}/rooms/{room}/leave", {})
    assert status == 200, body
    status, synced = await bob.get(f"{V3}/sync")
    assert room not in synced["rooms"].get("invite", {})


async def test_state_keys_with_an_encoded_slash_are_one_path_segment(alice):
    """A state key holding "/" travels as %2F in one segment (spec: path parameters are
    percent-encoded) and must reach the state handlers whole, not split into two segments."""
    from urllib.parse import quote

    status, room = await alice.post("/_matrix/client/v3/createRoom", {})
    room_id, key = room["room_id"], quote("a/b c", safe="")
    status, body = await alice.put(f"/_matrix/client/v3/rooms/{room_id}/state/m.test/{key}", {"x": 1})
    assert status == 200, body
    status, body = await alice.get(f"/_matrix/client/v3/rooms/{room_id}/state/m.test/{key}")
    assert (status, body) == (200, {"x": 1})
    status, body = await alice.get(f"/_matrix/client/v3/rooms/{room_id}/state")
    assert [e["state_key"] for e in body if e["type"] == "m.test"] == ["a/b c"]
