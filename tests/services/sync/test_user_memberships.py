"""UserMemberships: a user's memberships from memory only while nothing of theirs moved."""

import asyncio

from homeserver.services.streams.tracker import StreamTracker
from homeserver.services.sync.cached_queries import UserMemberships
from storage.events import MembershipChange, PersistBatch
from storage.sync import RoomMembershipAt


class FakeQueries:
    """memberships_at over a list of (position, room, membership) rows of one user."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, str, str]] = []
        self.reads = 0
        self.gate: asyncio.Event | None = None

    async def memberships_at(self, user_id, position):
        self.reads += 1
        if self.gate is not None:
            await self.gate.wait()
        out = {}
        for pos, room, membership in sorted(self.rows):
            if pos <= position:
                out[room] = RoomMembershipAt(room, membership, f"$e{pos}", pos, user_id)
        return out


def change(queries, stream, memberships, position, room, membership):
    stream.start([position])
    queries.rows.append((position, room, membership))
    memberships.stored(PersistBatch(room_id=room, events=[], memberships=[
        MembershipChange(f"$e{position}", "@u:here", "@u:here", membership, None, None, position)]))
    stream.finish([position])


async def test_served_from_memory_until_the_user_changes():
    queries, stream = FakeQueries(), StreamTracker(0)
    memberships = UserMemberships(queries, stream, 1 << 20)
    change(queries, stream, memberships, 1, "!a", "join")
    assert (await memberships.at("@u:here", 1))["!a"].membership == "join"
    assert (await memberships.at("@u:here", 1))["!a"].membership == "join"
    assert queries.reads == 1
    change(queries, stream, memberships, 2, "!a", "leave")
    assert (await memberships.at("@u:here", 2))["!a"].membership == "leave"
    assert (await memberships.at("@u:here", 1))["!a"].membership == "join"  # before the change: the database
    assert queries.reads == 3


async def test_a_read_racing_a_change_is_not_kept():
    queries, stream = FakeQueries(), StreamTracker(0)
    memberships = UserMemberships(queries, stream, 1 << 20)
    change(queries, stream, memberships, 1, "!a", "join")
    queries.gate = asyncio.Event()
    reading = asyncio.create_task(memberships.at("@u:here", 1))
    await asyncio.sleep(0)
    change(queries, stream, memberships, 2, "!a", "leave")  # stored while the read is in flight
    queries.gate.set()
    assert (await reading)["!a"].membership == "join"
    assert (await memberships.at("@u:here", 2))["!a"].membership == "leave"


async def test_a_change_stored_but_not_yet_visible_keeps_reads_out_of_memory():
    queries, stream = FakeQueries(), StreamTracker(0)
    memberships = UserMemberships(queries, stream, 1 << 20)
    change(queries, stream, memberships, 1, "!a", "join")
    stream.start([2])
    queries.rows.append((2, "!a", "leave"))
    memberships.stored(PersistBatch(room_id="!a", events=[], memberships=[
        MembershipChange("$e2", "@u:here", "@u:here", "leave", None, None, 2)]))
    assert (await memberships.at("@u:here", 1))["!a"].membership == "join"  # 2 is not visible yet
    stream.finish([2])
    assert (await memberships.at("@u:here", 2))["!a"].membership == "leave"


async def test_another_processs_writes_are_not_trusted_past_the_read():
    queries, stream = FakeQueries(), StreamTracker(0)
    memberships = UserMemberships(queries, stream, 1 << 20)
    change(queries, stream, memberships, 1, "!a", "join")
    await memberships.at("@u:here", 1)
    queries.rows.append((2, "!a", "leave"))
    stream.finish_remote([2])  # the other process's change: no stored() here
    assert (await memberships.at("@u:here", 2))["!a"].membership == "leave"
    assert (await memberships.at("@u:here", 1))["!a"].membership == "join"
