"""DirectoryStore: room aliases and the public room lists. Tables: room_aliases, published_rooms,
appservice_room_list (the rooms appservices published for their third-party networks).

`public_rooms()` builds the whole directory page in one query: each published room with the
state clients show (name, topic, alias, avatar, join rule, guest access, visibility, type)
and its joined member count, read from current_state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from storage.database import Database


@dataclass(frozen=True, slots=True)
class AliasRow:
    alias: str
    room_id: str
    creator: str | None


@dataclass(frozen=True, slots=True)
class PublicRoomRow:
    room_id: str
    num_joined_members: int
    name: str | None
    topic: str | None
    canonical_alias: str | None
    avatar_url: str | None
    join_rule: str | None
    guest_access: str | None
    history_visibility: str | None
    room_type: str | None


def _content_value(event_type: str, key: str) -> str:
    return f"""(SELECT e.pdu->'content'->>'{key}' FROM current_state c JOIN events e ON e.event_id = c.event_id
               WHERE c.room_id = p.room_id AND c.type = '{event_type}' AND c.state_key = '')"""


_PUBLIC_ROOMS_OF = f"""
SELECT * FROM (
    SELECT p.room_id,
           (SELECT count(*) FROM current_state c WHERE c.room_id = p.room_id AND c.type = 'm.room.member'
              AND c.membership = 'join')::int AS num_joined_members,
           {_content_value('m.room.name', 'name')} AS name,
           {_content_value('m.room.topic', 'topic')} AS topic,
           {_content_value('m.room.canonical_alias', 'alias')} AS canonical_alias,
           {_content_value('m.room.avatar', 'url')} AS avatar_url,
           {_content_value('m.room.join_rules', 'join_rule')} AS join_rule,
           {_content_value('m.room.guest_access', 'guest_access')} AS guest_access,
           {_content_value('m.room.history_visibility', 'history_visibility')} AS history_visibility,
           {_content_value('m.room.create', 'type')} AS room_type
    FROM ({{published}}) p
) r
WHERE ($1::text IS NULL OR r.name ILIKE $1 OR r.topic ILIKE $1 OR r.canonical_alias ILIKE $1 OR r.room_id = $2)
ORDER BY r.num_joined_members DESC, r.room_id
"""
# Which rooms are listed: the server's directory, one appservice network's, or all of them.
_PUBLIC_ROOMS = _PUBLIC_ROOMS_OF.format(published="SELECT room_id FROM published_rooms")
_NETWORK_ROOMS = _PUBLIC_ROOMS_OF.format(
    published="SELECT room_id FROM appservice_room_list WHERE appservice_id = $3 AND network_id = $4")
_ALL_NETWORKS_ROOMS = _PUBLIC_ROOMS_OF.format(
    published="SELECT room_id FROM published_rooms UNION SELECT room_id FROM appservice_room_list")


class DirectoryStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_alias(self, alias: str, room_id: str, creator: str | None, now_ts: int) -> bool:
        status = await self._db.execute(
            """INSERT INTO room_aliases (alias, room_id, creator, created_ts) VALUES ($1, $2, $3, $4)
               ON CONFLICT DO NOTHING""",
            alias, room_id, creator, now_ts,
        )
        return status == "INSERT 0 1"

    async def get_alias(self, alias: str) -> AliasRow | None:
        row = await self._db.fetchrow("SELECT alias, room_id, creator FROM room_aliases WHERE alias = $1", alias)
        return AliasRow(**row) if row else None

    async def delete_alias(self, alias: str) -> bool:
        return await self._db.execute("DELETE FROM room_aliases WHERE alias = $1", alias) == "DELETE 1"

    async def aliases_of_room(self, room_id: str) -> list[str]:
        rows = await self._db.fetch("SELECT alias FROM room_aliases WHERE room_id = $1 ORDER BY alias", room_id)
        return [r["alias"] for r in rows]

    async def remove_room(self, room_id: str) -> None:
        """Delete the room's aliases and take it out of the public directories (the server's and
        the appservices' network directories)."""
        await self._db.execute(
            """WITH unpublished AS (DELETE FROM published_rooms WHERE room_id = $1),
                    unlisted AS (DELETE FROM appservice_room_list WHERE room_id = $1)
               DELETE FROM room_aliases WHERE room_id = $1""",
            room_id,
        )

    async def move_aliases(self, old_room_id: str, new_room_id: str, creator: str) -> list[str]:
        """Point the old room's aliases at the new room; returns them."""
        rows = await self._db.fetch(
            "UPDATE room_aliases SET room_id = $2, creator = $3 WHERE room_id = $1 RETURNING alias",
            old_room_id, new_room_id, creator,
        )
        return sorted(r["alias"] for r in rows)

    async def set_published(self, room_id: str, published: bool, now_ts: int) -> None:
        if published:
            await self._db.execute(
                "INSERT INTO published_rooms (room_id, published_ts) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                room_id, now_ts,
            )
        else:
            await self._db.execute("DELETE FROM published_rooms WHERE room_id = $1", room_id)

    async def is_published(self, room_id: str) -> bool:
        return bool(await self._db.fetchval("SELECT 1 FROM published_rooms WHERE room_id = $1", room_id))

    async def set_published_for_network(self, appservice_id: str, network_id: str, room_id: str, published: bool,
                                        now_ts: int) -> None:
        """Publish (or unpublish) a room in an appservice's directory of one network."""
        if published:
            await self._db.execute(
                """INSERT INTO appservice_room_list (appservice_id, network_id, room_id, published_ts)
                   VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING""",
                appservice_id, network_id, room_id, now_ts,
            )
        else:
            await self._db.execute(
                "DELETE FROM appservice_room_list WHERE appservice_id = $1 AND network_id = $2 AND room_id = $3",
                appservice_id, network_id, room_id,
            )

    async def public_rooms(
        self, *, search: str | None, room_types: list[str | None] | None,
        network: tuple[str, str] | None = None, all_networks: bool = False,
    ) -> list[PublicRoomRow]:
        """Every published room matching the filter, most members first: the server's
        directory, the one of `network` (appservice ID, network ID), or with `all_networks`
        the server's and every appservice network's together.

        `room_types`: None = any; a list may contain None for rooms without a type.
        """
        pattern = None
        if search:
            escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            pattern = f"%{escaped}%"
        if network is not None:
            rows = await self._db.fetch(_NETWORK_ROOMS, pattern, search, *network)
        else:
            rows = await self._db.fetch(_ALL_NETWORKS_ROOMS if all_networks else _PUBLIC_ROOMS, pattern, search)
        result = [PublicRoomRow(**r) for r in rows]
        if room_types is not None:
            allowed: set[Any] = set(room_types)
            result = [r for r in result if r.room_type in allowed]
        return result
