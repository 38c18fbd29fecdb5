"""Which appservices a room concerns (spec: Registration; "interested" appservices).

A room concerns an appservice when its room ID is in the appservice's rooms namespace, one of
its local aliases is in the aliases namespace, or one of its joined local members is the
appservice's sender or in its users namespace. The member part is kept per state snapshot of
the room (any membership change moves the room to a new snapshot, so it is never stale); the
alias part until the room's aliases change (the directory tells us, `forget_aliases`).
"""

from __future__ import annotations

from collections import OrderedDict

from homeserver.core.appservices import AppService, AppServiceRegistry
from homeserver.core.events import Event
from homeserver.services.rooms.state import RoomSnapshot, RoomStateCache, SnapshotMemo, member_changes
from storage.appservices import AppServiceQueries

ALIAS_CACHE_ROOMS = 50_000


class RoomInterest:
    def __init__(self, registry: AppServiceRegistry, queries: AppServiceQueries, rooms: RoomStateCache,
                 server_name: str) -> None:
        self._registry = registry
        self._queries = queries
        self._server_name = server_name
        self._by_members: SnapshotMemo[frozenset[str]] = SnapshotMemo(rooms, self._members_interest,
                                                                      update=self._update_interest)
        self._by_aliases: OrderedDict[str, frozenset[str]] = OrderedDict()

    async def services_of_room(self, room_id: str) -> frozenset[str]:
        """The IDs of the appservices the room concerns."""
        if not self._registry:
            return frozenset()
        by_id = frozenset(s.id for s in self._registry.services if s.is_room_in_namespace(room_id))
        return by_id | await self._alias_interest(room_id) | await self._by_members.get(room_id)

    async def concerns(self, service: AppService, room_id: str) -> bool:
        return service.id in await self.services_of_room(room_id)

    def forget_aliases(self, room_id: str) -> None:
        """The room's aliases changed (created, deleted, moved by an upgrade)."""
        self._by_aliases.pop(room_id, None)

    async def _alias_interest(self, room_id: str) -> frozenset[str]:
        cached = self._by_aliases.get(room_id)
        if cached is not None:
            self._by_aliases.move_to_end(room_id)
            return cached
        services = [s for s in self._registry.services if s.aliases]
        found: frozenset[str] = frozenset()
        if services:
            aliases = await self._queries.aliases_of_room(room_id)
            found = frozenset(s.id for s in services if any(s.is_alias_in_namespace(a) for a in aliases))
        self._by_aliases[room_id] = found
        if len(self._by_aliases) > ALIAS_CACHE_ROOMS:
            self._by_aliases.popitem(last=False)
        return found

    async def _members_interest(self, room_id: str, _snap: RoomSnapshot | None) -> frozenset[str]:
        members = await self._queries.local_joined_members(room_id, self._server_name)
        return frozenset(s.id for s in self._registry.services
                         if any(s.is_interested_in_user(member) for member in members))

    async def _update_interest(self, room_id: str, old: frozenset[str], _snap: RoomSnapshot,
                               changed: dict[tuple[str, str], Event]) -> frozenset[str] | None:
        """After a batch: a local member who joined adds the appservices interested in them;
        one who left may have been an appservice's last (derive again)."""
        found = set(old)
        for user_id, membership in member_changes(changed).items():
            if not user_id.endswith(":" + self._server_name):
                continue
            interested = {s.id for s in self._registry.services if s.is_interested_in_user(user_id)}
            if membership == "join":
                found |= interested
            elif interested & old:
                return None
        return frozenset(found)
