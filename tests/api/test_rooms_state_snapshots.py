"""How a room's state snapshots are stored: deltas on the previous snapshot until the chain
down to the last full copy reaches max(50, a quarter of the state) (at most 500), then a full
copy; so storage grows with the changes and every snapshot still resolves to the state the
room had at that event."""

import asyncio

from homeserver.services.rooms.state import delta_chain_limit
from storage.state import StateStore

V3 = "/_matrix/client/v3"


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
