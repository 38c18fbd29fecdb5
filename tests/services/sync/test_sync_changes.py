"""SyncChanges: which rooms and users' memberships moved after a position, from memory only
when every change after it was seen here."""

from homeserver.services.streams.tracker import StreamTracker
from homeserver.services.sync.changes import StreamChanges, SyncChanges
from storage.events import MembershipChange, NewEvent, PersistBatch


def event(room_id: str, position: int) -> NewEvent:
    return NewEvent(event_id=f"$e{position}", room_id=room_id, type="m.room.message", state_key=None,
                    sender="@a:here", depth=position, origin_server_ts=0, received_ts=0, pdu={},
                    stream_ordering=position, prev_event_ids=(), auth_event_ids=())


def test_rooms_and_users_changed_after_a_position():
    stream = StreamTracker(10)
    changes = SyncChanges(stream)
    changes.stored(PersistBatch(room_id="!a", events=[event("!a", 11)]))
    changes.stored(PersistBatch(room_id="!b", events=[event("!b", 13)], memberships=[
        MembershipChange("$e13", "@u:here", "@u:here", "join", None, None, 13)]))
    changes.stored(PersistBatch(room_id="!c", events=[event("!c", 12)]))  # committed out of order
    assert changes.rooms.entities_changed_after(10, 100) == {"!a", "!b", "!c"}
    assert changes.rooms.entities_changed_after(11, 100) == {"!b", "!c"}
    assert changes.rooms.entities_changed_after(13, 100) == set()
    assert changes.rooms.entities_changed_after(10, 2) is None  # more than asked for: ask room by room
    assert changes.memberships.changed_after("@u:here", 12) is True
    assert changes.memberships.changed_after("@u:here", 13) is False
    assert changes.memberships.changed_after("@v:here", 10) is False
    changes.stored(PersistBatch(room_id="!a", events=[event("!a", 14)]))
    assert changes.rooms.entities_changed_after(13, 100) == {"!a"}  # its older entry no longer counts


def test_unknown_before_the_start_and_another_process_writes():
    stream = StreamTracker(10)
    changes = StreamChanges(stream)
    assert changes.changed_after("!a", 9) is None  # before this process started
    assert changes.entities_changed_after(10, 100) == set()
    stream.finish_remote([11])  # another process wrote position 11: what it was is unknown here
    assert changes.entities_changed_after(10, 100) is None
    assert changes.changed_after("!a", 10) is None
    assert changes.changed_after("!a", 11) is False


def test_forgetting_raises_the_floor():
    stream = StreamTracker(0)
    changes = StreamChanges(stream, max_entries=2)
    for position, room in enumerate(["!a", "!b", "!c", "!d", "!e"], start=1):
        stream.start([position])
        changes.changed(room, position)
        stream.finish([position])
    # Past max_entries the oldest are dropped: nothing before them can be answered.
    assert changes.entities_changed_after(0, 100) is None
    assert changes.entities_changed_after(3, 100) == {"!d", "!e"}
    changes.forget_all()  # rows deleted behind the pipeline's back
    assert changes.entities_changed_after(4, 100) is None
    assert changes.entities_changed_after(5, 100) == set()

