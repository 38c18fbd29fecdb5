"""EventStore.persist claims the room's head: a batch built on a head version another writer
has since moved writes nothing, even when that writer is still committing. RoomHeadQueries
reads the head and holds the room's writer lock."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import itertools

from storage.events import EventStore, NewEvent, Persisted, PersistBatch
from storage.room_heads import RoomHeadQueries

ROOM = "!room:test"
_positions = itertools.count(1)


def batch(event_id: str, prev: list[str], *, expected: int | None) -> PersistBatch:
    event = NewEvent(event_id=event_id, room_id=ROOM, stream_ordering=next(_positions), depth=len(prev) + 1,
                     type="m.room.message", state_key=None, sender="@x:test", origin_server_ts=1, received_ts=1,
                     pdu={"type": "m.room.message", "content": {}}, prev_event_ids=prev, auth_event_ids=[],
                     txn_user_id="@x:test", txn_device_id="D", txn_id=event_id)
    return PersistBatch(room_id=ROOM, events=[event], extremities_removed=prev, extremities_added=[event_id],
                        expected_head=expected, moves_head=True)


async def head(db) -> int:
    """The room's head version (a rooms row makes the room known to head_of)."""
    return (await RoomHeadQueries(db).head_of(ROOM)).version


async def stored(db) -> list[str]:
    rows = await db.fetch("SELECT event_id FROM events WHERE room_id = $1 ORDER BY stream_ordering", ROOM)
    return [r["event_id"] for r in rows]


async def test_a_batch_on_a_stale_head_writes_nothing(db):
    store = EventStore(db)
    await db.execute("INSERT INTO rooms (room_id, room_version, created_ts) VALUES ($1, '12', 0)", ROOM)
    assert await head(db) == 0
    assert await store.persist(batch("$A", [], expected=0)) == Persisted(True, 1, False)
    assert await store.persist(batch("$B", ["$A"], expected=1)) == Persisted(True, 2, False)
    # Built on version 1 too (a second writer): refused, and none of its rows are written.
    assert await store.persist(batch("$C", ["$A"], expected=1)) == Persisted(False, None, False)
    assert await stored(db) == ["$A", "$B"]
    assert await db.fetchval("SELECT count(*) FROM event_txn_ids WHERE event_id = '$C'") == 0
    assert [r["event_id"] for r in await db.fetch(
        "SELECT event_id FROM forward_extremities WHERE room_id = $1", ROOM)] == ["$B"]
    assert await head(db) == 2
    # A transaction ID that already produced an event in the room: nothing written, the head
    # left where it is (not even claimed), and the caller told why.
    again = batch("$C2", ["$B"], expected=2)
    again.events[0] = dataclasses.replace(again.events[0], txn_id="$A")
    assert await store.persist(again) == Persisted(False, None, True)
    assert await head(db) == 2 and await stored(db) == ["$A", "$B"]
    room = await RoomHeadQueries(db).head_of(ROOM)
    assert (room.room_version, room.extremities, room.state) == ("12", {"$B": 2}, {})
    # Without an expected version (received events) the batch moves the head whatever it is.
    assert await store.persist(batch("$D", ["$B"], expected=None)) == Persisted(True, 3, False)
    # Backfilled history leaves the head where it is.
    old = batch("$E", [], expected=None)
    old.moves_head, old.extremities_added = False, []
    assert await store.persist(old) == Persisted(True, None, False)
    # So do events stored on their own outside the timeline (outliers: auth chains, state).
    outlier = batch("$F", [], expected=None)
    outlier.moves_head, outlier.extremities_added = False, []
    outlier.events[0] = dataclasses.replace(outlier.events[0], outlier=True, stream_ordering=None, txn_id=None)
    assert await store.persist(outlier) == Persisted(True, None, False)
    assert await head(db) == 3
    # An admin dropping extremities moves the head: batches built on the old ones are refused.
    fork = batch("$G", ["$B"], expected=3)
    fork.extremities_removed = []
    assert (await store.persist(fork)).written
    assert await store.delete_extremities_but_newest(ROOM) == 1
    assert await head(db) == 5


async def test_a_writer_waits_for_the_one_committing_and_then_sees_the_head_moved(db):
    store = EventStore(db)
    assert await store.persist(batch("$A", [], expected=0)) == Persisted(True, 1, False)
    # One writer's persist holds the room (its transaction not yet committed)...
    async with db.transaction():
        assert await store.persist(batch("$B", ["$A"], expected=1)) == Persisted(True, 2, False)
        # ...a second writer built on the same head waits on the room's row.
        other = asyncio.create_task(store.persist(batch("$C", ["$A"], expected=1)),
                                    context=contextvars.Context())  # outside the transaction
        await asyncio.sleep(0.3)
        assert not other.done()
    # Once the first committed, the second learns the head moved and writes nothing.
    assert await other == Persisted(False, None, False)
    assert await stored(db) == ["$A", "$B"]


async def test_the_writer_lock_orders_writers_of_one_room(db):
    store = RoomHeadQueries(db)
    order: list[str] = []
    release = asyncio.Event()

    async def writer(name: str) -> None:
        async with store.room_writer_lock(ROOM):
            order.append(f"{name} in")
            if name == "first":
                await release.wait()
            order.append(f"{name} out")

    first = asyncio.create_task(writer("first"))
    while "first in" not in order:
        await asyncio.sleep(0.01)
    # Another room's lock is not held up; the same room's waits for the first to let go.
    async with store.room_writer_lock("!other:test"):
        order.append("other room")
    second = asyncio.create_task(writer("second"))
    await asyncio.sleep(0.3)
    assert order == ["first in", "other room"]
    release.set()
    await asyncio.gather(first, second)
    assert order == ["first in", "other room", "first out", "second in", "second out"]
    # Let go means let go: the connections went back to the pool outside any transaction.
    assert await db.fetchval("""SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())""") == 0
