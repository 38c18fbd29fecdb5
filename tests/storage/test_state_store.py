"""StateStore resolves a snapshot along its chain of deltas, whole or for a few keys, and
reads only the chain's entries (by the primary key), never every snapshot on the server."""

from __future__ import annotations

import json

from storage import state as state_queries
from storage.state import StateStore

ROOM = "!room:test"


async def group(db, group_id: int, prev: int | None, chain: int, entries: dict[tuple[str, str], str]) -> None:
    await db.execute("INSERT INTO state_groups (id, room_id, prev_group, chain_length) VALUES ($1, $2, $3, $4)",
                     group_id, ROOM, prev, chain)
    await db.executemany("INSERT INTO state_group_entries (group_id, type, state_key, event_id) VALUES ($1, $2, $3, $4)",
                         [(group_id, t, k, e) for (t, k), e in entries.items()])


async def chain_of_snapshots(db) -> None:
    """1: a full copy; 2 replaces a key; 3 adds one; 4 replaces the first again."""
    await group(db, 1, None, 0, {("m.room.create", ""): "$create", ("m.room.member", "@a:test"): "$join",
                                 ("m.room.topic", ""): "$topic1"})
    await group(db, 2, 1, 1, {("m.room.topic", ""): "$topic2"})
    await group(db, 3, 2, 2, {("m.room.member", "@b:test"): "$b"})
    await group(db, 4, 3, 3, {("m.room.topic", ""): "$topic3"})


async def test_a_snapshot_is_its_chain_with_the_nearest_entry_winning(db):
    await chain_of_snapshots(db)
    store = StateStore(db)
    assert await store.state_ids(4) == {("m.room.create", ""): "$create", ("m.room.member", "@a:test"): "$join",
                                        ("m.room.topic", ""): "$topic3", ("m.room.member", "@b:test"): "$b"}
    assert await store.state_ids(2) == {("m.room.create", ""): "$create", ("m.room.member", "@a:test"): "$join",
                                        ("m.room.topic", ""): "$topic2"}
    many = await store.state_ids_of_groups([2, 4, 1])
    assert many == {1: await store.state_ids(1), 2: await store.state_ids(2), 4: await store.state_ids(4)}
    assert many[1][("m.room.topic", "")] == "$topic1"


async def test_a_keyed_read_returns_only_the_keys_asked_that_exist(db):
    await chain_of_snapshots(db)
    store = StateStore(db)
    keys = [("m.room.topic", ""), ("m.room.member", "@b:test"), ("m.room.member", "@nobody:test")]
    assert await store.state_ids_for_keys(4, keys) == {("m.room.topic", ""): "$topic3",
                                                       ("m.room.member", "@b:test"): "$b"}
    assert await store.state_ids_for_keys(2, keys) == {("m.room.topic", ""): "$topic2"}
    assert await store.state_ids_for_keys(4, []) == {}


async def test_a_read_uses_the_primary_key_on_a_server_with_many_snapshots(db):
    # 400 other full copies of 100 entries: with them a plain join of the chain was planned as
    # a hash join over a sequential scan of every entry on the server.
    await db.execute("""INSERT INTO state_groups (id, room_id, prev_group, chain_length)
                        SELECT g, 'other', NULL, 0 FROM generate_series(100, 499) g""")
    await db.execute("""INSERT INTO state_group_entries (group_id, type, state_key, event_id)
                        SELECT g, 'm.room.member', '@u' || k, '$e' || g || '_' || k
                        FROM generate_series(100, 499) g, generate_series(1, 100) k""")
    await chain_of_snapshots(db)
    await db.execute("ANALYZE state_groups")
    await db.execute("ANALYZE state_group_entries")
    for query, args in [(state_queries._RESOLVE, [4]), (state_queries._RESOLVE_MANY, [[2, 4]]),
                        (state_queries._RESOLVE_KEYS, [4, ["m.room.topic"], [""]])]:
        plan = json.loads(await db.fetchval("EXPLAIN (FORMAT JSON) " + query, *args))
        scans = list(_nodes(plan[0]["Plan"]))
        on_entries = [n["Node Type"] for n in scans if n.get("Relation Name") == "state_group_entries"]
        assert on_entries and all(t in ("Index Scan", "Index Only Scan", "Bitmap Heap Scan") for t in on_entries), \
            (query, on_entries)


def _nodes(node: dict):
    yield node
    for child in node.get("Plans", ()):
        yield from _nodes(child)
