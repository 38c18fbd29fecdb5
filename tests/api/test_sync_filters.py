"""/sync with filters: event types and senders, contains_url, event_fields, event_format,
lazy-loaded members, room summaries, include_leave."""

import json
from urllib.parse import quote

from tests.api.test_sync import V3, send, sync
from tests.api.test_sync_ephemeral import shared_room


def with_filter(value):
    return quote(json.dumps(value))


async def test_timeline_types_senders_and_contains_url(alice, bob):
    room = await shared_room(alice, bob)
    token = (await sync(bob))["next_batch"]
    await send(alice, room, "from alice")
    await send(bob, room, "from bob")
    await alice.put(f"{V3}/rooms/{room}/send/m.room.message/img1", {"msgtype": "m.image", "body": "pic",
                                                                  "url": "mxc://test.local/abc"})
    await alice.put(f"{V3}/rooms/{room}/state/m.room.topic/", {"topic": "t"})
    body = await sync(bob, token, filter=with_filter({"room": {"timeline": {"senders": ["@alice:test.local"],
                                                                            "types": ["m.room.*"]}}}))
    events = body["rooms"]["join"][room]["timeline"]["events"]
    assert {e["sender"] for e in events} == {"@alice:test.local"}
    assert [e["type"] for e in events] == ["m.room.message", "m.room.message", "m.room.topic"]
    body = await sync(bob, token, filter=with_filter({"room": {"timeline": {"contains_url": True}}}))
    assert [e["content"]["body"] for e in body["rooms"]["join"][room]["timeline"]["events"]] == ["pic"]
    body = await sync(bob, token, filter=with_filter({"room": {"timeline": {"not_types": ["m.room.message"]}}}))
    assert [e["type"] for e in body["rooms"]["join"][room]["timeline"]["events"]] == ["m.room.topic"]


async def test_event_fields_and_federation_format(alice):
    status, room = await alice.post(f"{V3}/createRoom", {"name": "fields"})
    room = room["room_id"]
    token = (await sync(alice))["next_batch"]
    await send(alice, room, "trimmed")
    body = await sync(alice, token, filter=with_filter({"event_fields": ["type", "content.body"]}))
    assert body["rooms"]["join"][room]["timeline"]["events"] == [{"type": "m.room.message",
                                                                  "content": {"body": "trimmed"}}]
    body = await sync(alice, token, filter=with_filter({"event_format": "federation"}))
    pdu = body["rooms"]["join"][room]["timeline"]["events"][0]
    assert {"auth_events", "prev_events", "depth", "hashes", "signatures"} <= set(pdu)
    assert pdu["event_id"].startswith("$")  # added, as Synapse does (v3+ PDUs carry none)
    # A timeline limit of 0: no events, only state.
    body = await sync(alice, filter=with_filter({"room": {"timeline": {"limit": 0}, "state": {"types": ["m.room.name"]}}}))
    joined = body["rooms"]["join"][room]
    assert joined["timeline"]["events"] == [] and joined["timeline"]["limited"] is True
    assert [e["type"] for e in joined["state"]["events"]] == ["m.room.name"]


async def test_lazy_loaded_members_and_summary(alice, bob, client):
    carol = client.with_token((await client.register("carol"))["access_token"])
    room = await shared_room(alice, bob)
    await carol.post(f"{V3}/rooms/{room}/join", {})
    for i in range(5):
        await send(alice, room, f"a{i}")
    lazy = {"room": {"state": {"lazy_load_members": True}, "timeline": {"limit": 3}}}
    body = await sync(carol, filter=with_filter(lazy))
    joined = body["rooms"]["join"][room]
    members = {e["state_key"] for e in joined["state"]["events"] if e["type"] == "m.room.member"}
    # Only the timeline's sender (alice) and carol herself; not bob.
    assert members == {"@alice:test.local", "@carol:test.local"}
    assert joined["summary"]["m.joined_member_count"] == 3
    assert joined["summary"]["m.invited_member_count"] == 0
    assert set(joined["summary"]["m.heroes"]) == {"@alice:test.local", "@bob:test.local"}
    token = body["next_batch"]
    # bob speaks: his member event comes with it; alice's is not sent again.
    await send(bob, room, "hi from bob")
    body = await sync(carol, token, filter=with_filter(lazy))
    members = {e["state_key"] for e in body["rooms"]["join"][room]["state"]["events"] if e["type"] == "m.room.member"}
    assert members == {"@bob:test.local"}
    token = body["next_batch"]
    await send(bob, room, "again")
    body = await sync(carol, token, filter=with_filter(lazy))
    assert body["rooms"]["join"][room]["state"]["events"] == []
    redundant = {"room": {"state": {"lazy_load_members": True, "include_redundant_members": True}}}
    body = await sync(carol, token, filter=with_filter(redundant))
    members = {e["state_key"] for e in body["rooms"]["join"][room]["state"]["events"] if e["type"] == "m.room.member"}
    assert members == {"@bob:test.local"}


async def test_named_rooms_have_no_heroes(alice):
    status, room = await alice.post(f"{V3}/createRoom", {"name": "Named"})
    summary = (await sync(alice))["rooms"]["join"][room["room_id"]]["summary"]
    assert "m.heroes" not in summary and summary["m.joined_member_count"] == 1


async def test_include_leave_on_initial_sync(alice, bob):
    room = await shared_room(alice, bob)
    await bob.post(f"{V3}/rooms/{room}/leave", {})
    body = await sync(bob)
    assert room not in body["rooms"].get("leave", {})
    body = await sync(bob, filter=with_filter({"room": {"include_leave": True}}))
    left = body["rooms"]["leave"][room]
    assert left["timeline"]["events"][-1]["content"]["membership"] == "leave"


async def test_stored_filter_by_id_applies(alice):
    status, room = await alice.post(f"{V3}/createRoom", {})
    room = room["room_id"]
    status, body = await alice.post(f"{V3}/user/@alice:test.local/filter",
                                    {"room": {"timeline": {"types": ["m.room.create"]}}})
    body = await sync(alice, filter=body["filter_id"])
    assert [e["type"] for e in body["rooms"]["join"][room]["timeline"]["events"]] == ["m.room.create"]
