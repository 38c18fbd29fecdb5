"""FederationReadQueries on a hand-made DAG with a fork, a rejected event and an auth cycle."""

from __future__ import annotations

import itertools

from storage.federation_reads import FederationReadQueries, ServerView
from storage.events import EventStore, NewEvent, NewStateGroup, PersistBatch

ROOM = "!room:test"
_positions = itertools.count(1)


def event(event_id: str, depth: int, prev: list[str], auth: list[str] = (), *, rejected: bool = False,
          event_type: str = "m.room.message", state_key: str | None = None, content: dict | None = None,
          state_after: int | None = None) -> NewEvent:
    return NewEvent(
        event_id=event_id, room_id=ROOM, stream_ordering=next(_positions), depth=depth, type=event_type,
        state_key=state_key, sender="@x:test", origin_server_ts=depth, received_ts=depth,
        pdu={"type": event_type, "content": content or {}}, prev_event_ids=prev, auth_event_ids=list(auth),
        rejected_reason="auth" if rejected else None, state_before=state_after, state_after=state_after,
    )


async def dag(db) -> FederationReadQueries:
    """A <- B <- C, D (fork) <- E (merge) <- F <- G, and a rejected R (prev D) that G cites.
    Auth: B -> A; C -> A, B; G -> C; and a cycle A -> G (a peer could send one)."""
    events = [
        event("$A", 1, [], ["$G"]), event("$B", 2, ["$A"], ["$A"]), event("$C", 3, ["$B"], ["$A", "$B"]),
        event("$D", 3, ["$B"]), event("$E", 4, ["$C", "$D"]), event("$R", 4, ["$D"], rejected=True),
        event("$F", 5, ["$E"]), event("$G", 6, ["$F", "$R"], ["$C"]),
    ]
    await EventStore(db).persist(PersistBatch(room_id=ROOM, events=events))
    return FederationReadQueries(db)


async def test_backfill_is_deepest_first_and_skips_rejected(db):
    graph = await dag(db)
    assert [r.event_id for r in await graph.backfill(ROOM, ["$G"], 3)] == ["$G", "$F", "$E"]
    everything = [r.event_id for r in await graph.backfill(ROOM, ["$G"], 100)]
    assert everything[:3] == ["$G", "$F", "$E"] and set(everything[3:5]) == {"$C", "$D"}
    assert everything[5:] == ["$B", "$A"]
    assert [r.event_id for r in await graph.backfill(ROOM, ["$D", "$C"], 2)] in (["$C", "$D"], ["$D", "$C"])
    assert await graph.backfill("!other:test", ["$G"], 10) == []


async def test_missing_events_stop_at_earliest_and_keep_the_nearest(db):
    graph = await dag(db)
    found = await graph.missing_events(ROOM, ["$C"], ["$G"], 10, 0)
    # $C is never entered, but $D's branch goes on to $B and $A; $R is rejected.
    assert [r.event_id for r in found] == ["$F", "$E", "$D", "$B", "$A"]
    assert [r.event_id for r in await graph.missing_events(ROOM, ["$C"], ["$G"], 2, 0)] == ["$F", "$E"]
    assert [r.event_id for r in await graph.missing_events(ROOM, [], ["$G"], 10, 4)] == ["$F", "$E"]
    assert [r.event_id for r in await graph.missing_events(ROOM, ["$E"], ["$G"], 10, 0)] == ["$F", "$D", "$B", "$A"]


async def test_auth_chain_ends_on_a_cycle(db):
    graph = await dag(db)
    assert sorted(r.event_id for r in await graph.auth_chain(ROOM, ["$G"])) == ["$A", "$B", "$C", "$G"]
    assert sorted(await graph.auth_chain_ids(ROOM, ["$B"])) == ["$A", "$B", "$C", "$G"]
    assert await graph.auth_chain_ids(ROOM, ["$D"]) == []


async def test_server_views_and_server_joined(db):
    store = EventStore(db)
    vis = event("$vis", 1, [], event_type="m.room.history_visibility", state_key="",
                content={"history_visibility": "joined"})
    join = event("$j", 2, ["$vis"], event_type="m.room.member", state_key="@u:other.org",
                 content={"membership": "join"})
    mine = event("$m", 3, ["$j"], event_type="m.room.member", state_key="@x:test", content={"membership": "join"})
    leave = event("$l", 4, ["$m"], event_type="m.room.member", state_key="@u:other.org",
                  content={"membership": "leave"})
    await store.persist(PersistBatch(
        room_id=ROOM, events=[vis, join, mine, leave],
        state_groups=[
            NewStateGroup(1, None, 0, {("m.room.history_visibility", ""): "$vis",
                                       ("m.room.member", "@u:other.org"): "$j", ("m.room.member", "@x:test"): "$m"}),
            NewStateGroup(2, 1, 1, {("m.room.member", "@u:other.org"): "$l"}),
            NewStateGroup(3, None, 0, {}),
        ],
        current_state={("m.room.member", "@u:other.org"): ("$j", "join")},
    ))
    graph = FederationReadQueries(db)
    assert await graph.server_views([1, 2, 3], "other.org") == {
        1: ServerView("joined", ("join",)), 2: ServerView("joined", ("leave",)), 3: ServerView(None, ())}
    # Exactly the server part of the user ID: not a suffix of it.
    assert await graph.server_views([1], "her.org") == {1: ServerView("joined", ())}
    assert await graph.server_joined(ROOM, "other.org")
    assert not await graph.server_joined(ROOM, "her.org") and not await graph.server_joined(ROOM, "test")
