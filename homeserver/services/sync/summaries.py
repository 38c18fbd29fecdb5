"""Room summaries of /sync (member counts and heroes), kept per room state snapshot.

A summary is sent whenever a room's timeline holds a member event, so a join into a big room
wakes every member's /sync with one. Reading the room's members for each of them made a
receiver cost grow with the room; the counts and the first few members in membership order
only change with the room's state, so they are read once per snapshot (and once for all the
/syncs that ask at the same time) and kept, bounded in bytes.

A summary is taken from memory only when the room's cached snapshot is the state the /sync
saw last (the snapshot after its newest timeline event): a snapshot this process has not
caught up with yet (another process's write) is never paired with a newer timeline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from homeserver.caching import ENTRY_OVERHEAD, ID_BYTES, ByteLRU
from storage.sync import SyncQueries

MAX_HEROES = 5


@dataclass(frozen=True, slots=True)
class MemberSummary:
    """What a room's summary needs of its members: the counts, and the first members (one more
    than there are heroes, as the user themself is left out) joined or invited, and gone."""
    joined: int
    invited: int
    present: tuple[str, ...]  # joined then invited, oldest membership first
    gone: tuple[str, ...]  # left or banned, oldest membership first

    @classmethod
    def of(cls, members: list[tuple[str, str]]) -> MemberSummary:
        joined = [u for u, m in members if m == "join"]
        invited = [u for u, m in members if m == "invite"]
        gone = [u for u, m in members if m in ("leave", "ban")]
        return cls(len(joined), len(invited), tuple((joined + invited)[:MAX_HEROES + 1]),
                   tuple(gone[:MAX_HEROES + 1]))

    def body(self, user_id: str, named: bool) -> dict[str, Any]:
        """m.joined_member_count, m.invited_member_count, and the heroes of a room with no
        name or alias (those who left, when nobody else is in it)."""
        summary: dict[str, Any] = {"m.joined_member_count": self.joined, "m.invited_member_count": self.invited}
        if not named:
            heroes = [u for u in self.present if u != user_id][:MAX_HEROES]
            if not heroes:
                heroes = [u for u in self.gone if u != user_id][:MAX_HEROES]
            summary["m.heroes"] = heroes
        return summary


def _size(entry: tuple[int, MemberSummary]) -> int:
    return ENTRY_OVERHEAD + ID_BYTES * (len(entry[1].present) + len(entry[1].gone))


class MemberSummaries:
    def __init__(self, queries: SyncQueries, max_bytes: int) -> None:
        self._queries = queries
        self._memo: ByteLRU[str, tuple[int, MemberSummary]] = ByteLRU(max_bytes, _size)
        self.cache_stats = self._memo.stats
        # (room, state group) -> the read under way, shared by the /syncs that ask meanwhile.
        self._reading: dict[tuple[str, int], asyncio.Future[MemberSummary]] = {}

    async def of_rooms(self, rooms: Iterable[tuple[str, int | None]]) -> dict[str, MemberSummary]:
        """room -> its member summary, for (room_id, state group of the room now, or None when
        unknown: then it is read from the database)."""
        out: dict[str, MemberSummary] = {}
        waits: list[tuple[str, asyncio.Future[MemberSummary]]] = []
        to_read: list[tuple[str, int | None]] = []
        for room_id, group in rooms:
            if group is not None:
                cached = self._memo.get(room_id)
                if cached is not None and cached[0] == group:
                    out[room_id] = cached[1]
                    continue
                reading = self._reading.get((room_id, group))
                if reading is not None:
                    waits.append((room_id, reading))
                    continue
                self._reading[(room_id, group)] = asyncio.get_running_loop().create_future()
            to_read.append((room_id, group))
        if to_read:
            try:
                members = await self._queries.members_in_order_in_rooms([r for r, _ in to_read])
            except BaseException as e:
                for room_id, group in to_read:
                    self._settle(room_id, group, error=e)
                raise
            for room_id, group in to_read:
                summary = out[room_id] = MemberSummary.of(members.get(room_id, []))
                if group is not None:
                    self._memo.put(room_id, (group, summary))
                self._settle(room_id, group, summary=summary)
        for room_id, future in waits:
            try:
                out[room_id] = await asyncio.shield(future)
            except Exception:  # the sync reading it failed or was cancelled: read it here
                members = await self._queries.members_in_order_in_rooms([room_id])
                out[room_id] = MemberSummary.of(members.get(room_id, []))
        return out

    def _settle(self, room_id: str, group: int | None, *, summary: MemberSummary | None = None,
                error: BaseException | None = None) -> None:
        future = self._reading.pop((room_id, group), None) if group is not None else None
        if future is None or future.done():
            return
        if summary is not None:
            future.set_result(summary)
        else:
            future.set_exception(error if isinstance(error, Exception) else RuntimeError("summary read cancelled"))
            future.exception()  # retrieved here: only the /syncs waiting for it re-raise it
