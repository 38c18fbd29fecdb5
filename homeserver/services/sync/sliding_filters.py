"""Sliding sync list filters (MSC4186 `filters`, defined in MSC3575): which of the user's
rooms a list holds.

Each set filter must hold (AND). As Synapse: `is_dm` from the user's m.direct, `is_invite`
from their membership, `is_encrypted` and `room_types`/`not_room_types` from the current state
(stripped state for invites over federation; a room whose state is unknown passes neither),
`tags`/`not_tags` from each room's m.tag account data (`not_tags` wins). Synapse does not
implement `spaces` and `room_name_like`; they behave as MSC3575 describes them: `spaces`
keeps the rooms named by m.space.child events (with a `via`) of the listed spaces the user
is joined to (not their sub-spaces; other spaces are ignored), `room_name_like` keeps rooms
whose m.room.name contains the text, case-insensitively.

Whatever a filter needs is fetched once for all candidate rooms, one query per kind.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from homeserver.services.ephemeral.account_data import AccountDataService
from homeserver.services.sync.sliding_request import ListFilters
from storage.sync import RoomKind, SlidingRoomRow, SyncQueries


@dataclass(frozen=True)
class FilterFacts:
    """What the filters of one request need to know about the candidate rooms."""
    dm_rooms: set[str]
    kinds: dict[str, RoomKind]
    tags: dict[str, frozenset[str]]
    space_children: dict[str, set[str]]  # joined space -> its children


async def gather_facts(queries: SyncQueries, account_data: AccountDataService, user_id: str,
                       filters: Iterable[ListFilters], candidates: list[SlidingRoomRow],
                       rooms: dict[str, SlidingRoomRow], dm_rooms: set[str]) -> FilterFacts:
    """Fetch, for the `candidates`, only what the given filters ask for."""
    filters = list(filters)
    kinds: dict[str, RoomKind] = {}
    if any(f.needs_room_kinds for f in filters):
        invite_events = {r.room_id: r.event_id for r in candidates if r.membership in ("invite", "knock")}
        kinds = await queries.room_kinds([r.room_id for r in candidates], invite_events,
                                         names=any(f.room_name_like is not None for f in filters))
    tags = await account_data.room_tags(user_id) if any(f.needs_tags for f in filters) else {}
    # Only spaces the user is joined to count (MSC3575); the others are ignored.
    spaces = {s for f in filters for s in f.spaces or ()
              if s in rooms and rooms[s].membership == "join"}
    children = await queries.space_children(sorted(spaces)) if spaces else {}
    return FilterFacts(dm_rooms, kinds, tags, children)


def passes(room: SlidingRoomRow, filters: ListFilters, facts: FilterFacts) -> bool:
    room_id = room.room_id
    if filters.is_dm is not None and (room_id in facts.dm_rooms) != filters.is_dm:
        return False
    if filters.spaces is not None and not any(room_id in facts.space_children.get(s, ()) for s in filters.spaces):
        return False
    if filters.is_invite is not None and (room.membership == "invite") != filters.is_invite:
        return False
    if filters.needs_room_kinds:
        kind = facts.kinds.get(room_id)
        if kind is None:  # unknown state: neither encrypted nor not, of no known type (as Synapse)
            return False
        if filters.is_encrypted is not None and kind.encrypted != filters.is_encrypted:
            return False
        if filters.room_types is not None and kind.room_type not in filters.room_types:
            return False
        if kind.room_type in filters.not_room_types:
            return False
        if filters.room_name_like is not None and (
                kind.name is None or filters.room_name_like.casefold() not in kind.name.casefold()):
            return False
    if filters.needs_tags:
        tags = facts.tags.get(room_id, frozenset())
        if filters.tags is not None and not tags.intersection(filters.tags):
            return False
        if tags.intersection(filters.not_tags):
            return False
    return True
