"""Account data: a user's private key-value store, global and per room, delivered by /sync.

Room tags live here too, as the room's `m.tag` entry ({"tags": {tag: {"order": n}}}), and
`m.ignored_user_list` is read back by sync to hide ignored users. `m.fully_read` and
`m.push_rules` are the server's to write (read markers, push rule changes), not the client's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from homeserver.caching import ID_BYTES, ByteLRU
from homeserver.core.ids import is_valid_room_id, is_valid_user_id
from homeserver.errors import Codes, MatrixError
from homeserver.services.auth import Requester
from homeserver.services.streams.aux import AuxStream
from storage.account_data import AccountDataStore

SERVER_MANAGED_TYPES = ("m.fully_read", "m.push_rules")
# Global types some process keeps in memory (ignore lists here, push rules in PushRuleService).
CACHED_ELSEWHERE = ("m.ignored_user_list", "m.push_rules")
MAX_TAG_LENGTH = 255


class AccountDataService:
    def __init__(self, store: AccountDataStore, aux: AuxStream, ignore_lists_bytes: int) -> None:
        self._store = store
        self._aux = aux
        # user -> ignored users; small and read on every sync, so kept in memory (caches.ignore_lists).
        self._ignored: ByteLRU[str, frozenset[str]] = ByteLRU(ignore_lists_bytes,
                                                               lambda s: ID_BYTES * (len(s) + 1))
        self.ignored_cache_stats = self._ignored.stats
        # Moves with every change of any user's ignore list (kept sets of them stay valid
        # while it has not moved).
        self.ignored_generation = 0
        # Set by the app: tell other processes a user's cached account data (type) changed.
        self.replicate: Callable[[str, str], None] | None = None

    # --- client API --------------------------------------------------------------------------

    async def set_for_client(self, requester: Requester, user_id: str, room_id: str | None, data_type: str,
                             content: dict[str, Any]) -> None:
        _check_owner(requester, user_id, "modify")
        if data_type in SERVER_MANAGED_TYPES:
            raise MatrixError(405, Codes.BAD_JSON, f"Cannot set {data_type} through this API")
        if room_id is not None and not is_valid_room_id(room_id):
            raise MatrixError(400, Codes.INVALID_PARAM, "Invalid room ID")
        if data_type == "m.ignored_user_list":
            _check_ignored_list(content)
        await self.put(user_id, room_id or "", data_type, content)

    async def get_for_client(self, requester: Requester, user_id: str, room_id: str | None,
                             data_type: str) -> dict[str, Any]:
        _check_owner(requester, user_id, "read")
        if room_id is not None and not is_valid_room_id(room_id):
            raise MatrixError(400, Codes.INVALID_PARAM, "Invalid room ID")
        content = await self._store.get(user_id, room_id or "", data_type)
        if content is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Account data not found")
        return content

    # --- tags --------------------------------------------------------------------------------

    async def tags(self, requester: Requester, user_id: str, room_id: str) -> dict[str, Any]:
        _check_owner(requester, user_id, "read")
        content = await self._store.get(user_id, room_id, "m.tag") or {}
        tags = content.get("tags")
        return {"tags": tags if isinstance(tags, dict) else {}}

    async def set_tag(self, requester: Requester, user_id: str, room_id: str, tag: str, body: dict[str, Any]) -> None:
        _check_owner(requester, user_id, "modify")
        if not tag or len(tag.encode()) > MAX_TAG_LENGTH:
            raise MatrixError(400, Codes.INVALID_PARAM, "Invalid tag name")
        order = body.get("order")
        if order is not None and (isinstance(order, bool) or not isinstance(order, (int, float))):
            raise MatrixError(400, Codes.BAD_JSON, "'order' must be a number")
        tags = (await self.tags(requester, user_id, room_id))["tags"]
        tags[tag] = body
        await self.put(user_id, room_id, "m.tag", {"tags": tags})

    async def delete_tag(self, requester: Requester, user_id: str, room_id: str, tag: str) -> None:
        _check_owner(requester, user_id, "modify")
        tags = (await self.tags(requester, user_id, room_id))["tags"]
        if tags.pop(tag, None) is not None:
            await self.put(user_id, room_id, "m.tag", {"tags": tags})

    # --- for other services ------------------------------------------------------------------

    async def put(self, user_id: str, room_id: str, data_type: str, content: dict[str, Any]) -> None:
        async with self._aux.write([user_id]) as position:
            await self._store.put(user_id, room_id, data_type, content, position)
        if data_type in CACHED_ELSEWHERE and not room_id:
            if data_type == "m.ignored_user_list":
                self._ignored.pop(user_id)
                self.ignored_generation += 1
            if self.replicate is not None:
                self.replicate(user_id, data_type)

    async def room_upgraded(self, user_id: str, old_room_id: str, new_room_id: str) -> None:
        """A user landed in a room's replacement: its tags come along, and a direct chat stays
        one (m.direct lists the new room beside the old), as Synapse does."""
        tags = await self._store.get(user_id, old_room_id, "m.tag")
        if tags and not await self._store.get(user_id, new_room_id, "m.tag"):
            await self.put(user_id, new_room_id, "m.tag", tags)
        direct = await self._store.get(user_id, "", "m.direct")
        if isinstance(direct, dict):
            updated = {k: [*v, new_room_id] if isinstance(v, list) and old_room_id in v and new_room_id not in v else v
                       for k, v in direct.items()}
            if updated != direct:
                await self.put(user_id, "", "m.direct", updated)

    async def get(self, user_id: str, room_id: str, data_type: str) -> dict[str, Any] | None:
        return await self._store.get(user_id, room_id, data_type)

    async def all_of(self, user_id: str) -> dict[str, Any]:
        """All of a user's account data: {"global": {type: content}, "rooms": {room: {type: content}}}."""
        out: dict[str, Any] = {"global": {}, "rooms": {}}
        for row in await self._store.all_of(user_id):
            if row.room_id:
                out["rooms"].setdefault(row.room_id, {})[row.type] = row.content
            else:
                out["global"][row.type] = row.content
        return out

    async def room_tags(self, user_id: str) -> dict[str, frozenset[str]]:
        """room -> the names of the user's tags on it (from each room's m.tag), in one query."""
        out = {}
        for room_id, content in (await self._store.of_type(user_id, "m.tag")).items():
            tags = content.get("tags") if isinstance(content, dict) else None
            if isinstance(tags, dict) and tags:
                out[room_id] = frozenset(tags)
        return out

    async def ignored_users(self, user_id: str) -> frozenset[str]:
        return (await self.ignored_by([user_id])).get(user_id, frozenset())

    async def ignored_by(self, user_ids: Iterable[str]) -> dict[str, frozenset[str]]:
        """user -> whom they ignore, for those of `user_ids` who ignore anyone: the lists not
        kept yet read in one query (push evaluation asks for every member of a room)."""
        found: dict[str, frozenset[str]] = {}
        missing = []
        for user_id in user_ids:
            cached = self._ignored.get(user_id)
            if cached is None:
                missing.append(user_id)
            elif cached:
                found[user_id] = cached
        if missing:
            generation = self.ignored_generation
            contents = await self._store.global_of_users(missing, "m.ignored_user_list")
            for user_id in missing:
                ignored = _ignored_in(contents.get(user_id) or {})
                if generation == self.ignored_generation:  # else it may be older than a change
                    self._ignored.put(user_id, ignored)
                if ignored:
                    found[user_id] = ignored
        return found

    def forget_cached(self, user_id: str) -> None:
        """Another process changed this user's account data."""
        self._ignored.pop(user_id)
        self.ignored_generation += 1


def _ignored_in(content: dict[str, Any]) -> frozenset[str]:
    listed = content.get("ignored_users") if isinstance(content, dict) else None
    return frozenset(listed) if isinstance(listed, dict) else frozenset()


def _check_owner(requester: Requester, user_id: str, verb: str) -> None:
    if user_id != requester.user_id:
        raise MatrixError(403, Codes.FORBIDDEN, f"Cannot {verb} another user's account data")


def _check_ignored_list(content: dict[str, Any]) -> None:
    ignored = content.get("ignored_users")
    if not isinstance(ignored, dict):
        raise MatrixError(400, Codes.BAD_JSON, "'ignored_users' must be an object")
    for user_id in ignored:
        if not is_valid_user_id(user_id):
            raise MatrixError(400, Codes.BAD_JSON, f"Invalid user ID in ignored_users: {user_id!r}")
