"""MemberSummaries: a room's summary read once per state snapshot, whoever asks meanwhile."""

import asyncio

from homeserver.services.sync.summaries import MemberSummaries


class SlowMembers:
    """members_in_order_in_rooms that waits for a gate and counts its reads."""

    def __init__(self) -> None:
        self.reads = 0
        self.gate = asyncio.Event()
        self.fail_first = False

    async def members_in_order_in_rooms(self, room_ids):
        self.reads += 1
        await self.gate.wait()
        if self.fail_first and self.reads == 1:
            raise asyncio.CancelledError  # the first reader's request went away
        return {r: [("@a:here", "join"), ("@b:here", "invite"), ("@c:here", "leave")] for r in room_ids}


async def test_a_summary_is_read_once_for_all_who_ask_meanwhile():
    members = SlowMembers()
    summaries = MemberSummaries(members, 1 << 20)
    asking = [asyncio.create_task(summaries.of_rooms([("!r", 7)])) for _ in range(3)]
    await asyncio.sleep(0)
    members.gate.set()
    for result in await asyncio.gather(*asking):
        assert result["!r"].body("@b:here", named=False) == {
            "m.joined_member_count": 1, "m.invited_member_count": 1, "m.heroes": ["@a:here"]}
    assert members.reads == 1
    await summaries.of_rooms([("!r", 7)])
    assert members.reads == 1  # kept for this snapshot
    await summaries.of_rooms([("!r", 8)])
    assert members.reads == 2  # another snapshot: read again


async def test_those_waiting_read_themselves_when_the_first_reader_goes_away():
    members = SlowMembers()
    members.fail_first = True
    summaries = MemberSummaries(members, 1 << 20)
    first = asyncio.create_task(summaries.of_rooms([("!r", 7)]))
    await asyncio.sleep(0)
    second = asyncio.create_task(summaries.of_rooms([("!r", 7)]))
    await asyncio.sleep(0)
    members.gate.set()
    assert (await second)["!r"].joined == 1
    try:
        await first
    except asyncio.CancelledError:
        pass
    else:
        raise AssertionError("the first read was cancelled")
