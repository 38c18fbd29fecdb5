"""SyncQueries: what changed for a user between two room-event stream positions.
Tables read: events, room_memberships, current_state, state_groups, state_group_entries (written
by EventStore), forgotten_rooms, stripped_room_state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from storage.database import Database
from storage.events import EVENT_COLUMNS, EventRow


@dataclass(frozen=True, slots=True)
class RoomMembershipAt:
    room_id: str
    membership: str
    event_id: str
    stream_ordering: int
    sender: str


@dataclass(frozen=True, slots=True)
class SlidingRoomRow:
    """A room of a user's sliding sync room list: their membership, and where the room stands."""
    room_id: str
    membership: str
    event_id: str
    stream_ordering: int
    sender: str
    last_activity: int  # the newest event they may see: the room's, or their membership's
    bump_stamp: int | None  # the newest event of a "bump" type (joined rooms only)
    forgotten: bool


@dataclass(frozen=True, slots=True)
class RoomKind:
    """What sliding sync list filters ask of a room's current state."""
    encrypted: bool
    room_type: str | None  # the create event's `type`; None for a plain room
    name: str | None  # m.room.name, when asked for


# Some keys of state snapshots: each group's chain, then per group of the chain only the wanted
# entries, through the primary key (group_id, type, state_key): the members of $2 and, with $3,
# every non-member key (two range scans around 'm.room.member'), never the other members.
_KEYED_STATE = """
WITH RECURSIVE chain(root, id, prev, n) AS (
    SELECT id, id, prev_group, 0 FROM state_groups WHERE id = ANY($1::bigint[])
    UNION ALL
    -- One index lookup per link (LIMIT 1 keeps the planner from a hash join over every group).
    SELECT c.root, g.id, g.prev_group, c.n + 1 FROM chain c
    CROSS JOIN LATERAL (SELECT id, prev_group FROM state_groups WHERE id = c.prev LIMIT 1) g
)
SELECT DISTINCT ON (chain.root, x.type, x.state_key) chain.root, x.type, x.state_key, x.event_id
FROM chain CROSS JOIN LATERAL (
    SELECT e.type, e.state_key, e.event_id FROM state_group_entries e
    WHERE e.group_id = chain.id AND e.type = 'm.room.member' AND e.state_key = ANY($2::text[])
    UNION ALL
    SELECT e.type, e.state_key, e.event_id FROM state_group_entries e
    WHERE $3 AND e.group_id = chain.id AND e.type < 'm.room.member'
    UNION ALL
    SELECT e.type, e.state_key, e.event_id FROM state_group_entries e
    WHERE $3 AND e.group_id = chain.id AND e.type > 'm.room.member'
) x
ORDER BY chain.root, x.type, x.state_key, chain.n
"""


# Per candidate user (`{user}`: a column of the outer query), whether they are joined to a room
# `$1` is joined to: their few member rows through current_state_user_rooms, each room checked
# by primary key. LATERAL with LIMIT 1 keeps it one keyed probe per candidate (never the
# members of $1's rooms, which a hash join would read).
SHARES_A_ROOM = """
LEFT JOIN LATERAL (
    SELECT true AS shares FROM current_state theirs
    JOIN current_state mine ON mine.room_id = theirs.room_id AND mine.type = 'm.room.member'
                           AND mine.state_key = $1 AND mine.membership = 'join'
    WHERE theirs.type = 'm.room.member' AND theirs.state_key = {user} AND theirs.membership = 'join'
    LIMIT 1
) sharing ON true
"""


class SyncQueries:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def memberships_at(self, user_id: str, position: int) -> dict[str, RoomMembershipAt]:
        """room_id -> the user's latest membership at or before `position`, for every room."""
        rows = await self._db.fetch(
            """SELECT DISTINCT ON (room_id) room_id, membership, event_id, stream_ordering, sender
               FROM room_memberships WHERE user_id = $1 AND stream_ordering <= $2
               ORDER BY room_id, stream_ordering DESC""",
            user_id, position,
        )
        return {r["room_id"]: RoomMembershipAt(**r) for r in rows}

    async def own_membership_changes(self, user_id: str, room_ids: list[str], since: int,
                                     upto: int) -> dict[str, list[str]]:
        """room -> the user's memberships set in (since, upto], oldest first."""
        rows = await self._db.fetch(
            """SELECT room_id, membership FROM room_memberships WHERE user_id = $1
               AND room_id = ANY($2::text[]) AND stream_ordering > $3 AND stream_ordering <= $4
               ORDER BY stream_ordering""",
            user_id, room_ids, since, upto,
        )
        out: dict[str, list[str]] = {}
        for r in rows:
            out.setdefault(r["room_id"], []).append(r["membership"])
        return out

    async def rooms_with_events_between(self, room_ids: list[str], since: int, upto: int) -> set[str]:
        rows = await self._db.fetch(
            """SELECT DISTINCT room_id FROM events WHERE room_id = ANY($1::text[])
               AND stream_ordering > $2 AND stream_ordering <= $3""",
            room_ids, since, upto,
        )
        return {r["room_id"] for r in rows}

    async def recent_events(self, room_id: str, *, after: int, upto: int, limit: int) -> list[EventRow]:
        """Up to `limit` newest timeline events in (after, upto], oldest first."""
        rows = await self._db.fetch(
            f"""SELECT {EVENT_COLUMNS} FROM events e
                WHERE e.room_id = $1 AND e.stream_ordering > $2 AND e.stream_ordering <= $3
                  AND e.rejected_reason IS NULL AND NOT e.soft_failed AND NOT e.outlier
                ORDER BY e.stream_ordering DESC LIMIT $4""",
            room_id, after, upto, limit,
        )
        return [EventRow(**r) for r in reversed(rows)]

    async def stream_events(self, room_ids: list[str], user_id: str | None, *, after: int, upto: int,
                            limit: int) -> list[EventRow]:
        """Up to `limit` oldest timeline events in (after, upto] of these rooms, plus the
        member events whose target is `user_id` in any room (an invite, a kick), in stream
        order: the deprecated /events stream."""
        rows = await self._db.fetch(
            f"""SELECT * FROM (
                    SELECT {EVENT_COLUMNS} FROM events e
                    WHERE e.room_id = ANY($1::text[]) AND e.stream_ordering > $3 AND e.stream_ordering <= $4
                      AND e.rejected_reason IS NULL AND NOT e.soft_failed AND NOT e.outlier
                    UNION ALL
                    SELECT {EVENT_COLUMNS} FROM room_memberships m JOIN events e ON e.event_id = m.event_id
                    WHERE m.user_id = $2 AND m.stream_ordering > $3 AND m.stream_ordering <= $4
                      AND NOT (m.room_id = ANY($1::text[]))
                      AND e.rejected_reason IS NULL AND NOT e.soft_failed AND NOT e.outlier
                ) x ORDER BY x.stream_ordering LIMIT $5""",
            room_ids, user_id, after, upto, limit,
        )
        return [EventRow(**r) for r in rows]

    async def state_event_ids_changed_between(self, room_id: str, since: int, upto: int) -> list[str]:
        """The current state entries whose event arrived in (since, upto]."""
        rows = await self._db.fetch(
            """SELECT c.event_id FROM current_state c JOIN events e ON e.event_id = c.event_id
               WHERE c.room_id = $1 AND e.stream_ordering > $2 AND e.stream_ordering <= $3""",
            room_id, since, upto,
        )
        return [r["event_id"] for r in rows]

    async def event_at_or_before(self, room_id: str, position: int) -> EventRow | None:
        row = await self._db.fetchrow(
            f"""SELECT {EVENT_COLUMNS} FROM events e WHERE e.room_id = $1 AND e.stream_ordering <= $2
                AND e.rejected_reason IS NULL AND NOT e.soft_failed AND NOT e.outlier ORDER BY e.stream_ordering DESC LIMIT 1""",
            room_id, position,
        )
        return EventRow(**row) if row else None

    async def users_sharing_rooms(self, user_id: str) -> set[str]:
        """Everyone joined to at least one room `user_id` is joined to (including them)."""
        rows = await self._db.fetch(
            """SELECT DISTINCT theirs.state_key AS user_id
               FROM current_state mine JOIN current_state theirs ON theirs.room_id = mine.room_id
               WHERE mine.type = 'm.room.member' AND mine.state_key = $1 AND mine.membership = 'join'
                 AND theirs.type = 'm.room.member' AND theirs.membership = 'join'""",
            user_id,
        )
        return {r["user_id"] for r in rows}

    async def sharing_a_room_with(self, user_id: str, user_ids: list[str]) -> set[str]:
        """Those of `user_ids` joined to at least one room `user_id` is joined to: keyed by
        them, whatever the size of the rooms."""
        if not user_ids:
            return set()
        rows = await self._db.fetch(
            f"""SELECT u.user_id FROM unnest($2::text[]) AS u(user_id)
                {SHARES_A_ROOM.format(user="u.user_id")} WHERE sharing.shares""",
            user_id, user_ids,
        )
        return {r["user_id"] for r in rows}

    async def membership_changes_between(self, room_ids: list[str], since: int, upto: int) -> list[tuple[str, str, str]]:
        """(room_id, user_id, membership) of member events in these rooms in (since, upto]."""
        rows = await self._db.fetch(
            """SELECT room_id, user_id, membership FROM room_memberships WHERE room_id = ANY($1::text[])
               AND stream_ordering > $2 AND stream_ordering <= $3 ORDER BY stream_ordering""",
            room_ids, since, upto,
        )
        return [(r["room_id"], r["user_id"], r["membership"]) for r in rows]

    async def joined_members(self, room_id: str) -> list[str]:
        rows = await self._db.fetch(
            """SELECT state_key FROM current_state WHERE room_id = $1 AND type = 'm.room.member'
               AND membership = 'join'""",
            room_id,
        )
        return [r["state_key"] for r in rows]

    async def members_in_order(self, room_id: str) -> list[tuple[str, str]]:
        """(user_id, membership) of the room's current members, oldest membership first."""
        rows = await self._db.fetch(
            """SELECT c.state_key, c.membership FROM current_state c JOIN events e ON e.event_id = c.event_id
               WHERE c.room_id = $1 AND c.type = 'm.room.member' ORDER BY e.stream_ordering""",
            room_id,
        )
        return [(r["state_key"], r["membership"]) for r in rows]

    # --- sliding sync: batched over the rooms of one response ------------------------------------

    async def sliding_sync_rooms(self, user_id: str, upto: int, bump_types: list[str]) -> list[SlidingRoomRow]:
        """Every room the user has a membership in at `upto`, with its latest activity."""
        rows = await self._db.fetch(
            """WITH latest AS (
                   SELECT DISTINCT ON (room_id) room_id, membership, event_id, stream_ordering, sender
                   FROM room_memberships WHERE user_id = $1 AND stream_ordering <= $2
                   ORDER BY room_id, stream_ordering DESC
               )
               SELECT m.room_id, m.membership, m.event_id, m.stream_ordering, m.sender,
                   CASE WHEN m.membership = 'join' THEN coalesce((
                       SELECT e.stream_ordering FROM events e
                       WHERE e.room_id = m.room_id AND e.stream_ordering IS NOT NULL AND e.stream_ordering <= $2
                         AND e.rejected_reason IS NULL AND NOT e.soft_failed
                       ORDER BY e.stream_ordering DESC LIMIT 1), m.stream_ordering)
                   ELSE m.stream_ordering END AS last_activity,
                   CASE WHEN m.membership = 'join' THEN (
                       SELECT e.stream_ordering FROM events e
                       WHERE e.room_id = m.room_id AND e.stream_ordering IS NOT NULL AND e.stream_ordering <= $2
                         AND e.type = ANY($3::text[]) AND e.rejected_reason IS NULL AND NOT e.soft_failed
                       ORDER BY e.stream_ordering DESC LIMIT 1)
                   END AS bump_stamp,
                   EXISTS (SELECT 1 FROM forgotten_rooms f WHERE f.user_id = $1 AND f.room_id = m.room_id)
                       AS forgotten
               FROM latest m""",
            user_id, upto, bump_types,
        )
        return [SlidingRoomRow(**r) for r in rows]

    async def recent_events_in_rooms(self, windows: list[tuple[str, int, int, int]], *,
                                     no_outliers: bool = False) -> dict[str, list[EventRow]]:
        """room -> up to `limit` newest timeline events in (after, upto], oldest first, for
        (room_id, after, upto, limit) windows. `no_outliers`: as recent_events, without the
        out-of-band events that carry a position."""
        if not windows:
            return {}
        room_ids, afters, uptos, limits = (list(column) for column in zip(*windows))
        rows = await self._db.fetch(
            f"""SELECT x.* FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::int[])
                     AS w(room_id, after, upto, lim)
                CROSS JOIN LATERAL (
                    SELECT {EVENT_COLUMNS} FROM events e
                    WHERE e.room_id = w.room_id AND e.stream_ordering > w.after AND e.stream_ordering <= w.upto
                      AND e.rejected_reason IS NULL AND NOT e.soft_failed AND (NOT e.outlier OR NOT $5)
                    ORDER BY e.stream_ordering DESC LIMIT w.lim) x""",
            room_ids, afters, uptos, limits, no_outliers,
        )
        out: dict[str, list[EventRow]] = {}
        for r in rows:
            out.setdefault(r["room_id"], []).append(EventRow(**r))
        for events in out.values():
            events.sort(key=lambda e: e.stream_ordering)
        return out

    async def current_state_changed_in_rooms(
            self, windows: list[tuple[str, int, int]]) -> dict[str, dict[tuple[str, str], str]]:
        """room -> the current state entries whose event arrived in (since, upto], for
        (room_id, since, upto) windows."""
        if not windows:
            return {}
        room_ids, sinces, uptos = (list(column) for column in zip(*windows))
        rows = await self._db.fetch(
            """SELECT e.room_id, e.type, e.state_key, e.event_id
               FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS w(room_id, since, upto)
               JOIN events e ON e.room_id = w.room_id AND e.stream_ordering > w.since AND e.stream_ordering <= w.upto
               JOIN current_state c ON c.room_id = e.room_id AND c.type = e.type AND c.state_key = e.state_key
                                   AND c.event_id = e.event_id
               WHERE e.state_key IS NOT NULL""",
            room_ids, sinces, uptos,
        )
        out: dict[str, dict[tuple[str, str], str]] = {}
        for r in rows:
            out.setdefault(r["room_id"], {})[(r["type"], r["state_key"])] = r["event_id"]
        return out

    async def state_keys_of_groups(self, group_ids: list[int], members: list[str], *,
                                   others: bool) -> dict[int, dict[tuple[str, str], str]]:
        """group -> its state entries for the member events of `members` and, with `others`,
        every entry that is not a member event: what a lazy-loading sync sends, without reading
        the other members' entries of a big room."""
        rows = await self._db.fetch(_KEYED_STATE, group_ids, members, others)
        out: dict[int, dict[tuple[str, str], str]] = {group_id: {} for group_id in group_ids}
        for r in rows:
            out[r["root"]][(r["type"], r["state_key"])] = r["event_id"]
        return out

    async def members_in_order_in_rooms(self, room_ids: list[str]) -> dict[str, list[tuple[str, str]]]:
        """room -> members_in_order, for many rooms in one query."""
        rows = await self._db.fetch(
            """SELECT c.room_id, c.state_key, c.membership FROM current_state c JOIN events e ON e.event_id = c.event_id
               WHERE c.room_id = ANY($1::text[]) AND c.type = 'm.room.member' ORDER BY e.stream_ordering""",
            room_ids,
        )
        out: dict[str, list[tuple[str, str]]] = {room_id: [] for room_id in room_ids}
        for r in rows:
            out[r["room_id"]].append((r["state_key"], r["membership"]))
        return out

    async def visibility_inputs(self, room_ids: list[str], user_id: str
                                ) -> dict[str, tuple[list[tuple[int, object]], list[tuple[int, str]]]]:
        """room -> (history visibility changes as (position, content), the user's membership
        changes as (position, membership)), each oldest first: TimelineQueries.state_changes
        and memberships_of for many rooms in one query."""
        rows = await self._db.fetch(
            """SELECT room_id, stream_ordering, pdu->'content' AS content, NULL AS membership FROM events
               WHERE room_id = ANY($1::text[]) AND type = 'm.room.history_visibility' AND state_key = ''
                 AND stream_ordering IS NOT NULL AND rejected_reason IS NULL AND NOT soft_failed
               UNION ALL
               SELECT room_id, stream_ordering, NULL, membership FROM room_memberships
               WHERE room_id = ANY($1::text[]) AND user_id = $2
               ORDER BY stream_ordering""",
            room_ids, user_id,
        )
        out: dict[str, tuple[list[tuple[int, object]], list[tuple[int, str]]]] = {r: ([], []) for r in room_ids}
        for r in rows:
            changes, memberships = out[r["room_id"]]
            if r["membership"] is None:
                changes.append((r["stream_ordering"], r["content"]))
            else:
                memberships.append((r["stream_ordering"], r["membership"]))
        return out

    async def member_counts(self, room_ids: list[str]) -> dict[str, tuple[int, int]]:
        """room -> (joined, invited) member counts of the current state."""
        rows = await self._db.fetch(
            """SELECT room_id, count(*) FILTER (WHERE membership = 'join') AS joined,
                      count(*) FILTER (WHERE membership = 'invite') AS invited
               FROM current_state WHERE room_id = ANY($1::text[]) AND type = 'm.room.member'
               GROUP BY room_id""",
            room_ids,
        )
        return {r["room_id"]: (r["joined"], r["invited"]) for r in rows}

    async def heroes(self, room_ids: list[str], user_id: str, limit: int) -> dict[str, list[tuple[str, str]]]:
        """room -> (user_id, member event ID) of up to `limit` members other than `user_id`:
        joined first, then invited, then those who left, each oldest membership first."""
        rows = await self._db.fetch(
            """SELECT w.room_id, x.state_key, x.event_id FROM unnest($1::text[]) AS w(room_id)
               CROSS JOIN LATERAL (
                   SELECT c.state_key, c.event_id FROM current_state c JOIN events e ON e.event_id = c.event_id
                   WHERE c.room_id = w.room_id AND c.type = 'm.room.member' AND c.state_key <> $2
                     AND c.membership IN ('join', 'invite', 'leave', 'ban')
                   ORDER BY CASE c.membership WHEN 'join' THEN 0 WHEN 'invite' THEN 1 ELSE 2 END, e.stream_ordering
                   LIMIT $3) x""",
            room_ids, user_id, limit,
        )
        out: dict[str, list[tuple[str, str]]] = {}
        for r in rows:
            out.setdefault(r["room_id"], []).append((r["state_key"], r["event_id"]))
        return out

    async def room_kinds(self, room_ids: list[str], invite_events: dict[str, str], *,
                         names: bool = False) -> dict[str, RoomKind]:
        """room -> whether it is encrypted, its type (from the create event) and, with `names`,
        its m.room.name, from the current state; for a room whose state this server lacks (an
        invite or knock over federation), from the stripped state saved with the membership
        event in `invite_events` (room -> event ID). Rooms known neither way are absent."""
        types = ["m.room.create", "m.room.encryption"] + (["m.room.name"] if names else [])
        rows = await self._db.fetch(
            """SELECT c.room_id, c.type, e.pdu->'content' AS content
               FROM current_state c JOIN events e ON e.event_id = c.event_id
               WHERE c.room_id = ANY($1::text[]) AND c.state_key = '' AND c.type = ANY($2::text[])""",
            room_ids, types,
        )
        found: dict[str, dict[str, Any]] = {}
        for r in rows:
            found.setdefault(r["room_id"], {})[r["type"]] = r["content"]
        missing = [event_id for room_id, event_id in invite_events.items() if room_id not in found]
        if missing:
            for r in await self._db.fetch(
                    "SELECT room_id, state FROM stripped_room_state WHERE event_id = ANY($1::text[])", missing):
                for event in r["state"] if isinstance(r["state"], list) else []:
                    if isinstance(event, dict) and event.get("state_key") == "" and event.get("type") in types:
                        found.setdefault(r["room_id"], {})[event["type"]] = event.get("content")
        out: dict[str, RoomKind] = {}
        for room_id, by_type in found.items():
            create = by_type.get("m.room.create")
            if not isinstance(create, dict):
                continue
            name = by_type.get("m.room.name")
            name = name.get("name") if isinstance(name, dict) else None
            room_type = create.get("type")
            out[room_id] = RoomKind("m.room.encryption" in by_type, room_type if isinstance(room_type, str) else None,
                                    name if isinstance(name, str) else None)
        return out

    async def space_children(self, space_ids: list[str]) -> dict[str, set[str]]:
        """space -> the rooms its current m.space.child events name (those with a non-empty
        `via`: an event without one is a removed child, per the spec's Spaces section)."""
        rows = await self._db.fetch(
            """SELECT c.room_id, c.state_key FROM current_state c JOIN events e ON e.event_id = c.event_id
               WHERE c.room_id = ANY($1::text[]) AND c.type = 'm.space.child'
                 AND jsonb_typeof(e.pdu->'content'->'via') = 'array'
                 AND jsonb_array_length(e.pdu->'content'->'via') > 0""",
            space_ids,
        )
        out: dict[str, set[str]] = {}
        for r in rows:
            out.setdefault(r["room_id"], set()).add(r["state_key"])
        return out
