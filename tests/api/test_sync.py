"""GET /sync: initial and incremental, long-poll wake-ups, gaps, invites, leaves, re-joins."""

import asyncio
import time
import uuid


V3 = "/_matrix/client/v3"


async def send(c, room, text):
    status, body = await c.put(f"{V3}/rooms/{room}/send/m.room.message/{uuid.uuid4().hex}",
                               {"msgtype": "m.text", "body": text})
    assert status == 200, body
    return body["event_id"]


async def sync(c, since=None, timeout=0, **params):
    query = f"?timeout={timeout}" + (f"&since={since}" if since else "")
    for key, value in params.items():
        query += f"&{key}={value}"
    status, body = await c.get(f"{V3}/sync{query}")
    assert status == 200, body
    return body


async def test_initial_sync_has_rooms_with_state_and_timeline(alice):
    status, room = await alice.post(f"{V3}/createRoom", {"name": "Room A"})
    room = room["room_id"]
    sent = await send(alice, room, "hello")
    body = await sync(alice)
    joined = body["rooms"]["join"][room]
    timeline = joined["timeline"]
    assert timeline["events"][-1]["event_id"] == sent
    # The 10 newest events: the room's 8 creation events and the message fit, not limited.
    assert timeline["limited"] is False
    assert [e["type"] for e in timeline["events"]][0] == "m.room.create"
    assert body["next_batch"].startswith("s")


async def test_initial_sync_limited_timeline_with_state_and_prev_batch(alice):
    status, room = await alice.post(f"{V3}/createRoom", {"name": "Busy"})
    room = room["room_id"]
    ids = [await send(alice, room, f"m{i}") for i in range(8)]
    body = await sync(alice, filter='{"room":{"timeline":{"limit":3}}}')
    joined = body["rooms"]["join"][room]
    assert [e["event_id"] for e in joined["timeline"]["events"]] == ids[-3:]
    assert joined["timeline"]["limited"] is True
    state_types = {e["type"] for e in joined["state"]["events"]}
    assert {"m.room.create", "m.room.name", "m.room.power_levels", "m.room.member"} <= state_types
    # prev_batch continues with /messages exactly before the timeline.
    status, page = await alice.get(f"{V3}/rooms/{room}/messages?dir=b&limit=2&from={joined['timeline']['prev_batch']}")
    assert [e["event_id"] for e in page["chunk"]] == [ids[-4], ids[-5]]


async def test_incremental_sync_never_misses_or_repeats(alice, bob):
    status, room = await alice.post(f"{V3}/createRoom", {"preset": "public_chat"})
    room = room["room_id"]
    await bob.post(f"{V3}/rooms/{room}/join", {})
    token = (await sync(bob))["next_batch"]
    seen = []
    for batch in range(3):
        sent = [await send(alice, room, f"b{batch}-{i}") for i in range(2)]
        body = await sync(bob, token)
        events = body["rooms"]["join"][room]["timeline"]["events"]
        seen += [e["event_id"] for e in events]
        assert [e["event_id"] for e in events] == sent
        assert body["rooms"]["join"][room]["timeline"]["limited"] is False
        assert body["rooms"]["join"][room]["state"]["events"] == []
        token = body["next_batch"]
    assert len(seen) == len(set(seen)) == 6
    # Nothing new: no rooms, the same token.
    body = await sync(bob, token)
    assert body["rooms"] == {} and body["next_batch"] == token


async def test_long_poll_wakes_on_send_and_waits_when_idle(alice, bob):
    status, room = await alice.post(f"{V3}/createRoom", {"preset": "public_chat"})
    room = room["room_id"]
    await bob.post(f"{V3}/rooms/{room}/join", {})
    token = (await sync(bob))["next_batch"]
    started = time.monotonic()
    waiting = asyncio.create_task(sync(bob, token, timeout=10000))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    sent = await send(alice, room, "wake up")
    body = await asyncio.wait_for(waiting, 5)
    elapsed = time.monotonic() - started
    assert body["rooms"]["join"][room]["timeline"]["events"][-1]["event_id"] == sent
    assert elapsed < 5  # woken by the send, not by the 10 s timeout
    # An idle long-poll waits out its timeout and returns nothing new.
    started = time.monotonic()
    idle = await sync(bob, body["next_batch"], timeout=700)
    assert time.monotonic() - started >= 0.65
    assert idle["rooms"] == {}


async def test_gap_gives_limited_timeline_with_changed_state(alice, bob):
    status, room = await alice.post(f"{V3}/createRoom", {"preset": "public_chat"})
    room = room["room_id"]
    await bob.post(f"{V3}/rooms/{room}/join", {})
    token = (await sync(bob))["next_batch"]
    await alice.put(f"{V3}/rooms/{room}/state/m.room.topic/", {"topic": "changed in the gap"})
    for i in range(6):
        await send(alice, room, f"gap {i}")
    body = await sync(bob, token, filter='{"room":{"timeline":{"limit":2}}}')
    joined = body["rooms"]["join"][room]
    assert joined["timeline"]["limited"] is True
    assert [e["type"] for e in joined["state"]["events"]] == ["m.room.topic"]
    status, page = await bob.get(f"{V3}/rooms/{room}/messages?dir=b&limit=1&from={joined['timeline']['prev_batch']}")
    assert page["chunk"][0]["content"]["body"] == "gap 3"


async def test_invite_leave_and_rejoin(alice, bob):
    token = (await sync(bob))["next_batch"]
    status, room = await alice.post(f"{V3}/createRoom", {"name": "Invite only", "invite": ["@bob:test.local"]})
    room = room["room_id"]
    body = await sync(bob, token)
    invite_state = body["rooms"]["invite"][room]["invite_state"]["events"]
    assert {"type": "m.room.name", "state_key": "", "content": {"name": "Invite only"}, "sender": "@alice:test.local"} in invite_state
    assert any(e["type"] == "m.room.member" and e["content"]["membership"] == "invite" for e in invite_state)
    token = body["next_batch"]
    await bob.post(f"{V3}/rooms/{room}/join", {})
    body = await sync(bob, token)
    joined = body["rooms"]["join"][room]
    # A new join gets the room's state.
    assert any(e["type"] == "m.room.name" for e in joined["state"]["events"] + joined["timeline"]["events"])
    token = body["next_batch"]
    await alice.post(f"{V3}/rooms/{room}/kick", {"user_id": "@bob:test.local"})
    await send(alice, room, "after bob left")
    body = await sync(bob, token)
    left = body["rooms"]["leave"][room]["timeline"]["events"]
    assert left[-1]["type"] == "m.room.member" and left[-1]["content"]["membership"] == "leave"
    assert all(e.get("content", {}).get("body") != "after bob left" for e in left)
    assert room not in body["rooms"].get("join", {})
    token = body["next_batch"]
    await alice.post(f"{V3}/rooms/{room}/invite", {"user_id": "@bob:test.local"})
    await bob.post(f"{V3}/rooms/{room}/join", {})
    body = await sync(bob, token)
    assert room in body["rooms"]["join"]


async def test_filters_upload_get_and_use(alice, client):
    status, room_a = await alice.post(f"{V3}/createRoom", {})
    status, room_b = await alice.post(f"{V3}/createRoom", {})
    status, body = await alice.post(f"{V3}/user/@alice:test.local/filter",
                                    {"room": {"rooms": [room_a["room_id"]], "timeline": {"limit": 2}}})
    assert status == 200 and body == {"filter_id": "0"}
    status, stored = await alice.get(f"{V3}/user/@alice:test.local/filter/0")
    assert stored == {"room": {"rooms": [room_a["room_id"]], "timeline": {"limit": 2}}}
    synced = await sync(alice, filter="0")
    assert list(synced["rooms"]["join"]) == [room_a["room_id"]]
    assert len(synced["rooms"]["join"][room_a["room_id"]]["timeline"]["events"]) == 2
    synced = await sync(alice, filter='{"room":{"not_rooms":["' + room_a["room_id"] + '"]}}')
    assert list(synced["rooms"]["join"]) == [room_b["room_id"]]
    status, body = await alice.get(f"{V3}/user/@alice:test.local/filter/7")
    assert status == 404
    status, body = await alice.get(f"{V3}/user/@bob:test.local/filter/0")
    assert status == 403
    status, body = await alice.post(f"{V3}/user/@alice:test.local/filter", {"room": {"timeline": {"limit": -1}}})
    assert status == 400 and body["errcode"] == "M_BAD_JSON"
    status, body = await alice.post(f"{V3}/user/@alice:test.local/filter", {"event_format": "xml"})
    assert status == 400
    # Room and sender lists must hold IDs (as Synapse's filter schema; sytest 80torture/10filters).
    for bad in ({"room": {"timeline": {"rooms": ["not_a_room_id"]}}},
                {"room": {"timeline": {"senders": ["not_a_sender_id"]}}},
                {"room": {"not_rooms": ["#alias:test.local"]}},
                {"presence": {"not_senders": ["alice"]}}):
        status, body = await alice.post(f"{V3}/user/@alice:test.local/filter", bad)
        assert (status, body["errcode"]) == (400, "M_BAD_JSON"), bad
    status, body = await alice.post(f"{V3}/user/@alice:test.local/filter",
                                    {"room": {"timeline": {"senders": ["@alice:test.local"], "rooms": ["!v12roomhash"]}}})
    assert status == 200
    status, body = await alice.get(f"{V3}/sync?filter=99")
    assert status == 404


async def test_sync_bad_input(alice):
    for query in ("?since=garbage", "?timeout=soon", "?full_state=maybe", "?filter={bad"):
        status, body = await alice.get(f"{V3}/sync{query}")
        assert status == 400, (query, body)
    status, body = await alice.get(f"{V3}/sync")
    assert status == 200


async def test_unlimited_initial_timeline_pages_back_from_now(alice):
    status, room = await alice.post(f"{V3}/createRoom", {})
    room = room["room_id"]
    await send(alice, room, "hello")
    body = await sync(alice)
    timeline = body["rooms"]["join"][room]["timeline"]
    assert timeline["limited"] is False
    # The whole history fits: /messages from prev_batch gives it again (as Synapse's does).
    status, page = await alice.get(f"{V3}/rooms/{room}/messages?dir=b&from={timeline['prev_batch']}")
    assert status == 200 and page["chunk"][0]["event_id"] == timeline["events"][-1]["event_id"]
    assert "end" in page


async def test_filtered_timeline_fills_up_to_its_limit(alice):
    status, room = await alice.post(f"{V3}/createRoom", {})
    room = room["room_id"]
    wanted = await send(alice, room, "the message")
    for i in range(12):
        await alice.put(f"{V3}/rooms/{room}/send/a.filler/{uuid.uuid4().hex}", {"i": i})
    flt = '{"room":{"timeline":{"limit":1,"types":["m.room.message"]},"state":{"types":[]}}}'
    body = await sync(alice, filter=flt)
    timeline = body["rooms"]["join"][room]["timeline"]
    assert [e["event_id"] for e in timeline["events"]] == [wanted]
    assert timeline["limited"] is False and "prev_batch" in timeline


async def test_profile_change_is_no_fresh_room_and_filtered_out_rooms_are_left_out(alice):
    status, room = await alice.post(f"{V3}/createRoom", {})
    room = room["room_id"]
    await alice.put(f"{V3}/rooms/{room}/state/a.madeup.test.state/", {"my_key": 1})
    flt = '{"room":{"timeline":{"types":[]},"state":{"types":["a.madeup.test.state"]},"ephemeral":{"types":[]}},' \
          '"presence":{"types":[]}}'
    first = await sync(alice, filter=flt)
    assert len(first["rooms"]["join"][room]["state"]["events"]) == 1
    await alice.put(f"{V3}/rooms/{room}/state/m.room.member/@alice:test.local",
                    {"membership": "join", "displayname": "boris"})
    await send(alice, room, "wait")
    body = await sync(alice, since=first["next_batch"], filter=flt)
    assert room not in body["rooms"].get("join", {})  # nothing passed the filters, no full state
    body = await sync(alice, since=first["next_batch"])
    timeline = body["rooms"]["join"][room]["timeline"]
    assert [e["type"] for e in timeline["events"]] == ["m.room.member", "m.room.message"]
    assert timeline["limited"] is False


async def test_newly_joined_room_is_limited_and_brings_presence(alice, bob):
    status, room = await alice.post(f"{V3}/createRoom", {"preset": "public_chat"})
    room = room["room_id"]
    await sync(alice)  # alice is online
    first = await sync(bob)
    await bob.post(f"{V3}/join/{room}", {})
    body = await sync(bob, since=first["next_batch"])
    assert body["rooms"]["join"][room]["timeline"]["limited"] is True
    assert "@alice:test.local" in [e["sender"] for e in body["presence"]["events"]]


async def test_join_and_leave_in_one_window_gives_the_full_state(alice, bob):
    status, room = await alice.post(f"{V3}/createRoom", {"invite": ["@bob:test.local"]})
    room = room["room_id"]
    await alice.put(f"{V3}/rooms/{room}/state/a.madeup.test.state/", {"my_key": 1})
    first = await sync(bob)
    await bob.post(f"{V3}/rooms/{room}/join", {})
    await bob.post(f"{V3}/rooms/{room}/leave", {})
    flt = '{"room":{"timeline":{"types":[]},"include_leave":true}}'
    body = await sync(bob, since=first["next_batch"], filter=flt)
    state = body["rooms"]["leave"][room]["state"]["events"]
    # Bob never had the room's state: all of it, not just what changed since his last sync.
    assert any(e["type"] == "a.madeup.test.state" for e in state)
    assert any(e["type"] == "m.room.create" for e in state)


async def test_current_state_shows_in_a_timeline_of_history_the_user_may_not_see(alice, bob, client):
    await client.register("carol")
    status, room = await alice.post(f"{V3}/createRoom", {"preset": "public_chat"})
    room = room["room_id"]
    await bob.post(f"{V3}/join/{room}", {})
    await alice.put(f"{V3}/rooms/{room}/state/m.room.history_visibility/", {"history_visibility": "joined"})
    first = await sync(bob)
    await bob.post(f"{V3}/rooms/{room}/leave", {})
    status, carol = await client.post(f"{V3}/login", {"type": "m.login.password", "identifier": {
        "type": "m.id.user", "user": "carol"}, "password": "s3cret-pass"})
    carol_client = client.with_token(carol["access_token"])
    await carol_client.post(f"{V3}/join/{room}", {})
    for i in range(15):
        await send(alice, room, f"unseen {i}")
    await bob.post(f"{V3}/join/{room}", {})
    body = await sync(bob, since=first["next_batch"])
    events = body["rooms"]["join"][room]["timeline"]["events"]
    assert any(e["type"] == "m.room.member" and e["state_key"] == "@carol:test.local" for e in events)
    assert not any(e["type"] == "m.room.message" for e in events)


async def test_federation_format_events_carry_their_id(alice):
    status, room = await alice.post(f"{V3}/createRoom", {})
    room = room["room_id"]
    event_id = await send(alice, room, "fed")
    body = await sync(alice, filter='{"event_format":"federation","room":{"timeline":{"limit":1}}}')
    event = body["rooms"]["join"][room]["timeline"]["events"][0]
    assert event["event_id"] == event_id and "auth_events" in event and "hashes" in event
