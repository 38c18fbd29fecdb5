"""RecentEvents: the newest events of each room in memory, as the event pipeline stores them.

What it answers must be what the database would answer, or "unknown": these tests hold it
to that through redactions, relations, other servers' events, other processes' writes and
its byte ceiling."""

import asyncio

from homeserver.services.rooms.recent import RecentEvents
from homeserver.services.streams.tracker import StreamTracker
from storage.events import EventRow, MembershipChange, NewEvent, PersistBatch

ROOM = "!room:here"


class FakeEvents:
    """EventStore.get_events for the rows of other servers' events being checked."""

    def __init__(self) -> None:
        self.redacted_by: dict[str, str] = {}

    async def get_events(self, event_ids):
        return {e: _row(e, self.redacted_by.get(e)) for e in event_ids}


class FakeRelations:
    def __init__(self) -> None:
        self.types: dict[str, set[str]] = {}

    async def relation_types(self, event_ids):
        return {e: self.types[e] for e in event_ids if e in self.types}


def _row(event_id: str, redacted_by: str | None) -> EventRow:
    return EventRow(event_id, ROOM, 1, 1, "m.room.message", None, "@a:here", 0, {}, False, None, False, None, None,
                    None, None, redacted_by)


def event(event_id: str, position: int | None, *, sender: str = "@alice:here", type_: str = "m.room.message",
          state_key: str | None = None, body: str = "hi", room: str = ROOM, **extra) -> NewEvent:
    content = extra.pop("content", {"body": body})
    pdu = {"type": type_, "sender": sender, "room_id": room, "content": content, "origin_server_ts": 0}
    return NewEvent(event_id=event_id, room_id=room, stream_ordering=position, depth=position or 0, type=type_,
                    state_key=state_key, sender=sender, origin_server_ts=0, received_ts=0, pdu=pdu,
                    prev_event_ids=(), auth_event_ids=(), **extra)


def make(start: int = 0, max_bytes: int = 1 << 20, rows_per_room: int = 100):
    stream = StreamTracker(start)
    events, relations = FakeEvents(), FakeRelations()
    return RecentEvents(stream, events, relations, "here", max_bytes, rows_per_room), stream, events, relations


def store(recent: RecentEvents, *events: NewEvent, memberships=()) -> None:
    recent.stored(PersistBatch(room_id=events[0].room_id if events else ROOM, events=list(events),
                               memberships=list(memberships)))


async def test_answers_what_was_stored_after_start_and_nothing_before():
    recent, *_ = make(start=10)
    store(recent, event("$a", 11), event("$b", 12))
    assert [r.event_id for r in recent.events(ROOM, after=10, upto=12, limit=10)] == ["$a", "$b"]
    assert [r.event_id for r in recent.events(ROOM, after=11, upto=12, limit=10)] == ["$b"]
    assert [r.event_id for r in recent.events(ROOM, after=10, upto=11, limit=10)] == ["$a"]  # upto respected
    # Before the start position: unknown, unless the newest `limit` events are all held.
    assert recent.events(ROOM, after=0, upto=12, limit=5) is None
    assert [r.event_id for r in recent.events(ROOM, after=0, upto=12, limit=1)] == ["$b"]
    assert recent.rooms_with_events([ROOM, "!other:here"], 10, 12) == {ROOM}
    assert recent.rooms_with_events([ROOM], 11, 11) == set()
    assert recent.rooms_with_events([ROOM], 5, 12) is None


async def test_a_room_created_here_is_held_whole():
    recent, *_ = make(start=10)
    store(recent, event("$create", 11, type_="m.room.create", state_key=""), event("$msg", 12))
    assert [r.event_id for r in recent.events(ROOM, after=0, upto=12, limit=10)] == ["$create", "$msg"]


async def test_outliers_rejected_and_soft_failed_events_are_not_in_the_timeline():
    recent, *_ = make()
    store(recent, event("$ok", 1), event("$out", None, outlier=True), event("$rej", 2, rejected_reason="auth"),
          event("$soft", 3, soft_failed=True))
    assert [r.event_id for r in recent.events(ROOM, after=0, upto=3, limit=10)] == ["$ok"]


async def test_a_redaction_stored_later_redacts_the_held_row():
    recent, *_ = make()
    store(recent, event("$msg", 1))
    store(recent, event("$red", 2, type_="m.room.redaction", redacts="$msg"))
    rows = recent.events(ROOM, after=0, upto=2, limit=10)
    assert [(r.event_id, r.redacted_by) for r in rows] == [("$msg", "$red"), ("$red", None)]
    assert recent.event("$red").event_id == "$red"  # found for redacted_because


async def test_a_redaction_from_another_server_without_the_power_redacts_only_its_servers_events():
    recent, *_ = make()
    store(recent, event("$mine", 1))
    store(recent, event("$red", 2, sender="@mallory:there", type_="m.room.redaction", redacts="$mine",
                        redaction_domain_check=True))
    assert recent.events(ROOM, after=0, upto=1, limit=10)[0].redacted_by is None


async def test_relations_stored_later_are_bundled():
    recent, *_ = make()
    store(recent, event("$root", 1))
    rows = recent.events(ROOM, after=0, upto=1, limit=10)
    assert recent.relation_types(rows) == {}
    store(recent, event("$edit", 2, relates_to="$root", rel_type="m.replace"))
    store(recent, event("$annotation", 3, relates_to="$root", rel_type="m.annotation"))  # not bundled
    assert recent.relation_types(rows) == {"$root": {"m.replace"}}
    assert recent.relation_types([_row("$unknown", None)]) is None


async def test_events_of_other_servers_are_served_once_checked_against_the_database():
    recent, _, events, relations = make()
    events.redacted_by["$theirs"] = "$earlier-redaction"  # stored before the event itself
    relations.types["$theirs"] = {"m.thread"}
    store(recent, event("$theirs", 1, sender="@bob:there"))
    assert recent.events(ROOM, after=0, upto=1, limit=10) is None  # not checked yet
    assert recent.relation_types([_row("$theirs", None)]) is None
    await asyncio.sleep(0)  # the check runs in the background
    await asyncio.sleep(0)
    rows = recent.events(ROOM, after=0, upto=1, limit=10)
    assert [(r.event_id, r.redacted_by) for r in rows] == [("$theirs", "$earlier-redaction")]
    assert recent.relation_types(rows) == {"$theirs": {"m.thread"}}


async def test_another_processs_writes_make_older_positions_unknown():
    recent, stream, *_ = make()
    store(recent, event("$a", 1))
    stream.finish_remote([2])  # another process wrote position 2: in which room, unknown here
    assert recent.events(ROOM, after=0, upto=2, limit=10) is None
    assert recent.rooms_with_events([ROOM], 1, 2) is None
    store(recent, event("$c", 3))
    assert [r.event_id for r in recent.events(ROOM, after=2, upto=3, limit=10)] == ["$c"]


async def test_membership_changes_in_stream_order():
    recent, *_ = make()
    store(recent, event("$j", 1, type_="m.room.member", state_key="@bob:here"),
          memberships=[MembershipChange("$j", "@bob:here", "@bob:here", "join", None, None, 1)])
    store(recent, event("$x", 2, room="!two:here", type_="m.room.member", state_key="@carol:here"),
          memberships=[MembershipChange("$x", "@carol:here", "@carol:here", "invite", None, None, 2)])
    assert recent.membership_changes([ROOM, "!two:here"], 0, 2) == [
        (ROOM, "@bob:here", "join"), ("!two:here", "@carol:here", "invite")]
    assert recent.membership_changes([ROOM], 1, 2) == []


async def test_never_holds_more_than_its_byte_ceiling_and_forgets_what_it_dropped():
    recent, *_ = make(max_bytes=40_000, rows_per_room=5)
    for i in range(1, 200):
        store(recent, event(f"$e{i}", i, room=f"!r{i % 7}:here", body="x" * (i * 10)))
        assert recent.cache_stats.bytes() <= 40_000
    assert recent.cache_stats.evictions > 0
    # A room is held only back to its dropped rows, and dropped rooms are unknown.
    for room in (f"!r{k}:here" for k in range(7)):
        rows = recent.events(room, after=0, upto=199, limit=100)
        assert rows is None
    rows = recent.events("!r3:here", after=190, upto=199, limit=100)
    assert rows is None or all(r.room_id == "!r3:here" for r in rows)


async def test_a_room_forgotten_is_read_from_the_database():
    recent, stream, *_ = make()
    stream.start([1])
    stream.finish([1])
    store(recent, event("$a", 1))
    recent.forget(ROOM)
    assert recent.events(ROOM, after=0, upto=1, limit=10) is None
    store(recent, event("$b", 2))
    assert [r.event_id for r in recent.events(ROOM, after=1, upto=2, limit=10)] == ["$b"]
