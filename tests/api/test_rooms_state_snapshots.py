"""How a room's state snapshots are stored: deltas on the previous snapshot until the chain
down to the last full copy reaches max(50, a quarter of the state) (at most 500), then a full
copy; so storage grows with the changes and every snapshot still resolves to the state the
room had at that event."""

import asyncio

from homeserver.services.rooms.state import delta_chain_limit
from storage.state import StateStore

V3 = "/_matrix/client/v3"
BOB = "@bob:test.local"


async def test_a_big_room_stores_full_copies_every_quarter_of_its_state(alice, db):
    status, created = await alice.post(f"{V3}/createRoom", {"preset": "private_chat"})
    assert status == 200, created
    room = created["room_id"]
    for start in range(0, 320, 20):  # concurrently: group commit puts several in one batch
        answers = await asyncio.gather(*(alice.put(f"{V3}/rooms/{room}/state/org.example.key/k{i}", {"i": i})
                                         for i in range(start, start + 20)))
        assert all(status == 200 for status, _ in answers), answers
    groups = await db.fetch(
        """SELECT g.id, g.prev_group, g.chain_length, count(e.*) AS entries FROM state_groups g
           LEFT JOIN state_group_entries e ON e.group_id = g.id WHERE g.room_id = $1 GROUP BY g.id ORDER BY g.id""",
        room)
    events = await db.fetch(
        """SELECT event_id, type, state_key, state_after FROM events
           WHERE room_id = $1 AND state_key IS NOT NULL ORDER BY stream_ordering""", room)
    assert len(events) == len(groups) > 320
    # Each snapshot resolves to the state replayed up to its event.
    store, state = StateStore(db), {}
    for event in events:
        state[(event["type"], event["state_key"])] = event["event_id"]
        assert await store.state_ids(event["state_after"]) == state
    # Chains grew past 50 once a quarter of the state was more, never past the limit; full
    # copies came every quarter of the state, not every 50 events.
    sizes = {e["state_after"]: n for n, e in enumerate(events, 1)}
    assert all(g["chain_length"] < delta_chain_limit(sizes[g["id"]]) for g in groups)
    assert max(g["chain_length"] for g in groups) >= 60
    copies = [g for g in groups if g["prev_group"] is None]
    assert len(copies) == 6, [sizes[g["id"]] for g in copies]  # at 1, 51, 101, 151, 201 and 257 entries
    assert sum(g["entries"] for g in groups) < 1_200  # a copy every 50: 1,600
    status, body = await alice.get(f"{V3}/rooms/{room}/state")
    assert status == 200 and len([e for e in body if e["type"] == "org.example.key"]) == 320


async def test_state_reads_of_an_older_snapshot_take_only_the_keys_asked(alice, bob):
    """A former member reads one state key as it was when they left (a keyed read of an older
    snapshot); a lazy-loading /messages page deep in history gets its senders' member events
    as they were at its first event."""
    status, created = await alice.post(f"{V3}/createRoom", {"preset": "public_chat", "name": "one"})
    room = created["room_id"]
    assert (await bob.post(f"{V3}/rooms/{room}/join", {}))[0] == 200
    assert (await bob.put(f"{V3}/rooms/{room}/send/m.room.message/t1", {"msgtype": "m.text", "body": "hi"}))[0] == 200
    assert (await bob.post(f"{V3}/rooms/{room}/leave", {}))[0] == 200
    assert (await alice.put(f"{V3}/rooms/{room}/state/m.room.name", {"name": "two"}))[0] == 200
    assert (await alice.put(f"{V3}/rooms/{room}/state/m.room.topic", {"topic": "later"}))[0] == 200
    status, name = await bob.get(f"{V3}/rooms/{room}/state/m.room.name")
    assert (status, name) == (200, {"name": "one"})
    status, _ = await bob.get(f"{V3}/rooms/{room}/state/m.room.topic")
    assert status == 404
    status, name = await alice.get(f"{V3}/rooms/{room}/state/m.room.name")
    assert (status, name) == (200, {"name": "two"})
    # Backwards past the topic and the name: the next page is Bob's leave, message and join,
    # read at the leave (an older snapshot): Bob's member event there is his leave.
    lazy = '&filter={"lazy_load_members":true}'
    status, newest = await alice.get(f"{V3}/rooms/{room}/messages?dir=b&limit=2" + lazy)
    assert status == 200 and [e["type"] for e in newest["chunk"]] == ["m.room.topic", "m.room.name"]
    status, page = await alice.get(f"{V3}/rooms/{room}/messages?dir=b&limit=3&from={newest['end']}" + lazy)
    assert status == 200
    assert [(e["type"], e["sender"]) for e in page["chunk"]] == [
        ("m.room.member", BOB), ("m.room.message", BOB), ("m.room.member", BOB)]
    assert [(e["state_key"], e["content"]["membership"]) for e in page["state"]] == [(BOB, "leave")]
