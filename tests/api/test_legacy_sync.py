"""The deprecated sync APIs: GET /events (and peeking with room_id), /events/{eventId},
/initialSync and /rooms/{roomId}/initialSync, as Synapse serves them."""

import asyncio

import pytest

V3 = "/_matrix/client/v3"


@pytest.fixture
def config_overrides():
    return {"registration": {"enabled": True, "allow_guests": True}, "presence": {"enabled": True}}


async def _room(alice, **body):
    status, created = await alice.post(f"{V3}/createRoom", {"preset": "public_chat", **body})
    assert status == 200, created
    return created["room_id"]


async def _send(user, room_id, text, txn):
    status, sent = await user.put(f"{V3}/rooms/{room_id}/send/m.room.message/{txn}", {"msgtype": "m.text", "body": text})
    assert status == 200, sent
    return sent["event_id"]


async def test_events_streams_from_a_token(alice):
    room_id = await _room(alice)
    status, first = await alice.get(f"{V3}/events?timeout=0")
    assert status == 200 and all(e["type"] != "m.room.message" for e in first["chunk"])
    assert first["end"].startswith("s")
    event_id = await _send(alice, room_id, "hello", "t1")
    status, page = await alice.get(f"{V3}/events?timeout=0&from={first['end']}")
    assert status == 200, page
    messages = [e for e in page["chunk"] if e["type"] == "m.room.message"]
    assert [e["event_id"] for e in messages] == [event_id]
    # The "client v1" format: the sender as user_id too, and the room.
    assert messages[0]["user_id"] == messages[0]["sender"] and messages[0]["room_id"] == room_id
    assert page["start"] == first["end"]
    # Nothing new since `end`.
    status, again = await alice.get(f"{V3}/events?timeout=0&from={page['end']}")
    assert [e for e in again["chunk"] if e["type"] == "m.room.message"] == []
    # A /sync token works as a `from` too (the tokens are the same kind).
    status, synced = await alice.get(f"{V3}/sync")
    second = await _send(alice, room_id, "again", "t2")
    status, page = await alice.get(f"{V3}/events?timeout=0&from={synced['next_batch']}")
    assert [e["event_id"] for e in page["chunk"] if e["type"] == "m.room.message"] == [second]


async def test_events_pages_with_limit(alice):
    room_id = await _room(alice)
    status, first = await alice.get(f"{V3}/events?timeout=0")
    sent = [await _send(alice, room_id, f"m{i}", f"t{i}") for i in range(5)]
    seen, token = [], first["end"]
    for _ in range(5):
        status, page = await alice.get(f"{V3}/events?timeout=0&limit=2&from={token}")
        assert status == 200
        assert len([e for e in page["chunk"] if "event_id" in e]) <= 2
        seen += [e["event_id"] for e in page["chunk"] if e.get("type") == "m.room.message"]
        token = page["end"]
    assert seen == sent


async def test_events_long_poll_wakes_on_a_new_event(alice):
    room_id = await _room(alice)
    status, first = await alice.get(f"{V3}/events?timeout=0")
    poll = asyncio.ensure_future(alice.get(f"{V3}/events?timeout=10000&from={first['end']}"))
    await asyncio.sleep(0.2)
    assert not poll.done()
    event_id = await _send(alice, room_id, "wake", "w1")
    status, page = await asyncio.wait_for(poll, 5)
    assert status == 200 and event_id in [e.get("event_id") for e in page["chunk"]]


async def test_events_carry_account_data_typing_and_receipts(alice):
    room_id = await _room(alice)
    event_id = await _send(alice, room_id, "read me", "r1")
    status, first = await alice.get(f"{V3}/events?timeout=0")
    me = (await alice.get(f"{V3}/account/whoami"))[1]["user_id"]
    await alice.put(f"{V3}/user/{me}/rooms/{room_id}/tags/u.work", {"order": 1})
    await alice.put(f"{V3}/user/{me}/account_data/a.global", {"x": 1})
    await alice.put(f"{V3}/rooms/{room_id}/typing/{me}", {"typing": True, "timeout": 10000})
    await alice.post(f"{V3}/rooms/{room_id}/receipt/m.read/{event_id}", {})
    status, page = await alice.get(f"{V3}/events?timeout=0&from={first['end']}")
    by_type = {e["type"]: e for e in page["chunk"]}
    assert by_type["m.tag"] == {"type": "m.tag", "content": {"tags": {"u.work": {"order": 1}}}, "room_id": room_id}
    assert by_type["a.global"] == {"type": "a.global", "content": {"x": 1}}
    assert by_type["m.typing"]["room_id"] == room_id and by_type["m.typing"]["content"]["user_ids"] == [me]
    assert by_type["m.receipt"]["room_id"] == room_id
    assert me in by_type["m.receipt"]["content"][event_id]["m.read"]


async def test_initial_sync_lists_rooms_and_departed_ones(alice, bob):
    me = (await alice.get(f"{V3}/account/whoami"))[1]["user_id"]
    room_id = await _room(alice, name="Snapshot")
    for i in range(3):
        await _send(alice, room_id, f"m{i}", f"i{i}")
    status, body = await alice.get(f"{V3}/initialSync?limit=2")
    assert status == 200, body
    room = next(r for r in body["rooms"] if r["room_id"] == room_id)
    assert room["membership"] == "join" and room["visibility"] == "private"
    assert [e["content"]["body"] for e in room["messages"]["chunk"]] == ["m1", "m2"]
    assert {"start", "end"} <= set(room["messages"])
    assert any(e["type"] == "m.room.name" for e in room["state"])
    assert any(p["content"]["user_id"] == me for p in body["presence"]) or body["presence"] == []
    assert body["end"].startswith("s")
    # limit=0: no messages.
    status, body = await alice.get(f"{V3}/initialSync?limit=0")
    assert next(r for r in body["rooms"] if r["room_id"] == room_id)["messages"]["chunk"] == []
    # A room left shows with archived=true only, as it was at the departure.
    await bob.post(f"{V3}/join/{room_id}", {})
    await bob.post(f"{V3}/rooms/{room_id}/leave", {})
    await _send(alice, room_id, "after bob left", "i9")
    status, body = await bob.get(f"{V3}/initialSync")
    assert all(r["room_id"] != room_id for r in body["rooms"])
    status, body = await bob.get(f"{V3}/initialSync?archived=true&limit=2")
    room = next(r for r in body["rooms"] if r["room_id"] == room_id)
    assert room["membership"] == "leave"
    assert room["messages"]["chunk"][-1]["content"]["membership"] == "leave"
    status, body = await bob.get(f"{V3}/initialSync?archived=maybe")
    assert status == 400
    status, body = await bob.get(f"{V3}/initialSync?limit=many")
    assert status == 400 and body["errcode"] == "M_INVALID_PARAM"


async def test_room_initial_sync_for_members_former_members_and_peekers(alice, bob, client):
    room_id = await _room(alice)
    await _send(alice, room_id, "private", "p1")
    # Not a member, not world-readable: 403.
    status, body = await bob.get(f"{V3}/rooms/{room_id}/initialSync")
    assert status == 403 and body["errcode"] == "M_FORBIDDEN"
    status, body = await alice.get(f"{V3}/rooms/{room_id}/initialSync")
    assert status == 200 and body["membership"] == "join"
    assert {"room_id", "messages", "state", "presence", "receipts", "account_data"} <= set(body)
    member = next(e for e in body["state"] if e["type"] == "m.room.member")
    assert member["user_id"] == member["sender"]
    # World-readable: anyone may peek; they see from the change on, and have no membership.
    await alice.put(f"{V3}/rooms/{room_id}/state/m.room.history_visibility/", {"history_visibility": "world_readable"})
    await _send(alice, room_id, "public", "p2")
    status, body = await bob.get(f"{V3}/rooms/{room_id}/initialSync")
    assert status == 200, body
    assert "membership" not in body
    assert [e["type"] for e in body["messages"]["chunk"]] == ["m.room.history_visibility", "m.room.message"]
    # The end token starts a peeking /events stream.
    poll = asyncio.ensure_future(bob.get(f"{V3}/events?room_id={room_id}&timeout=10000&from={body['messages']['end']}"))
    await asyncio.sleep(0.2)
    event_id = await _send(alice, room_id, "for peekers", "p3")
    status, page = await asyncio.wait_for(poll, 5)
    assert status == 200 and event_id in [e.get("event_id") for e in page["chunk"]]
    # A guest may peek too, and must name the room.
    status, guest = await client.post(f"{V3}/register?kind=guest", {})
    g = client.with_token(guest["access_token"])
    status, body = await g.get(f"{V3}/rooms/{room_id}/initialSync")
    assert status == 200
    status, body = await g.get(f"{V3}/events?timeout=0")
    assert status == 400
    status, body = await g.get(f"{V3}/events?timeout=0&room_id={room_id}")
    assert status == 200


async def test_peeking_events_needs_a_world_readable_room(alice, bob):
    room_id = await _room(alice)
    status, body = await bob.get(f"{V3}/events?timeout=0&room_id={room_id}")
    assert status == 403 and body["errcode"] == "M_FORBIDDEN"


async def test_room_initial_sync_of_a_departed_room_stops_at_the_departure(alice, bob):
    room_id = await _room(alice)
    await bob.post(f"{V3}/join/{room_id}", {})
    await _send(alice, room_id, "before", "d1")
    await bob.post(f"{V3}/rooms/{room_id}/leave", {})
    await _send(alice, room_id, "after", "d2")
    await alice.put(f"{V3}/rooms/{room_id}/state/m.room.topic/", {"topic": "changed after"})
    status, body = await bob.get(f"{V3}/rooms/{room_id}/initialSync?limit=2")
    assert status == 200, body
    assert body["membership"] == "leave" and body["presence"] == [] and body["receipts"] == []
    assert [e["content"].get("body") for e in body["messages"]["chunk"]] == ["before", None]
    assert not any(e["type"] == "m.room.topic" for e in body["state"])


async def test_get_one_event(alice, bob):
    room_id = await _room(alice)
    event_id = await _send(alice, room_id, "one", "e1")
    status, event = await alice.get(f"{V3}/events/{event_id}")
    assert status == 200 and event["event_id"] == event_id and event["content"]["body"] == "one"
    status, body = await bob.get(f"{V3}/events/{event_id}")
    assert status == 403
    status, body = await alice.get(f"{V3}/events/$nope")
    assert status == 404 and body["errcode"] == "M_NOT_FOUND"


async def test_events_rejects_a_negative_limit(alice):
    status, body = await alice.get(f"{V3}/events?timeout=0&limit=-2")
    assert status == 400 and body["errcode"] == "M_INVALID_PARAM"
