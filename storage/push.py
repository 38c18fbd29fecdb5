"""Push stores: users' push rules, pushers, and the push actions of events.

PushRuleStore — tables: push_rules, push_rule_defaults.
PusherStore — tables: pushers.
PushActionStore — tables: event_push_actions (reads events to find an event's thread, and
receipts to count past each user's read receipts).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from storage.database import Database


@dataclass(frozen=True, slots=True)
class PushRuleRow:
    kind: str
    rule_id: str
    position: int
    conditions: list[dict[str, Any]] | None
    pattern: str | None
    actions: list[Any]
    enabled: bool


@dataclass(frozen=True, slots=True)
class DefaultRuleRow:
    kind: str
    rule_id: str
    enabled: bool | None
    actions: list[Any] | None


class PushRuleStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def lock_user(self, user_id: str) -> None:
        """Serialise rule changes of one user until the end of the current transaction."""
        await self._db.execute("SELECT pg_advisory_xact_lock(hashtext('push_rules'), hashtext($1))", user_id)

    async def rules_of(self, user_id: str) -> tuple[list[PushRuleRow], list[DefaultRuleRow]]:
        """The user's own rules (by kind, most important first) and their default-rule changes."""
        return (await self.rules_of_users([user_id]))[user_id]

    async def rules_of_users(
        self, user_ids: Sequence[str],
    ) -> dict[str, tuple[list[PushRuleRow], list[DefaultRuleRow]]]:
        """`rules_of` for many users in one round trip; users with nothing stored map to ([], [])."""
        rows = await self._db.fetch(
            """SELECT 'rule' AS source, user_id, kind, rule_id, position, conditions, pattern, actions,
                      enabled FROM push_rules WHERE user_id = ANY($1::text[])
               UNION ALL
               SELECT 'default', user_id, kind, rule_id, 0, NULL, NULL, actions, enabled
               FROM push_rule_defaults WHERE user_id = ANY($1::text[])
               ORDER BY user_id, kind, position""",
            list(user_ids),
        )
        found: dict[str, tuple[list[PushRuleRow], list[DefaultRuleRow]]] = {u: ([], []) for u in user_ids}
        for r in rows:
            mine, defaults = found[r["user_id"]]
            if r["source"] == "rule":
                mine.append(PushRuleRow(r["kind"], r["rule_id"], r["position"], r["conditions"], r["pattern"],
                                        r["actions"], r["enabled"]))
            else:
                defaults.append(DefaultRuleRow(r["kind"], r["rule_id"], r["enabled"], r["actions"]))
        return found

    async def order_of(self, user_id: str, kind: str) -> list[str]:
        rows = await self._db.fetch(
            "SELECT rule_id FROM push_rules WHERE user_id = $1 AND kind = $2 ORDER BY position", user_id, kind
        )
        return [r["rule_id"] for r in rows]

    async def put_rule(self, user_id: str, kind: str, rule_id: str, conditions: list[dict[str, Any]] | None,
                       pattern: str | None, actions: list[Any]) -> None:
        """Create (enabled) or update a rule; an update keeps its enabled flag. Its position is
        set by `set_order`."""
        await self._db.execute(
            """INSERT INTO push_rules (user_id, kind, rule_id, position, conditions, pattern, actions)
               VALUES ($1, $2, $3, 0, $4, $5, $6)
               ON CONFLICT (user_id, kind, rule_id)
               DO UPDATE SET conditions = EXCLUDED.conditions, pattern = EXCLUDED.pattern,
                             actions = EXCLUDED.actions""",
            user_id, kind, rule_id, conditions, pattern, actions,
        )

    async def set_order(self, user_id: str, kind: str, rule_ids: Sequence[str]) -> None:
        """Renumber the user's rules of a kind: `rule_ids` most important first."""
        await self._db.execute(
            """UPDATE push_rules p SET position = o.position
               FROM unnest($3::text[]) WITH ORDINALITY AS o(rule_id, position)
               WHERE p.user_id = $1 AND p.kind = $2 AND p.rule_id = o.rule_id""",
            user_id, kind, list(rule_ids),
        )

    async def delete_rule(self, user_id: str, kind: str, rule_id: str) -> bool:
        status = await self._db.execute(
            "DELETE FROM push_rules WHERE user_id = $1 AND kind = $2 AND rule_id = $3", user_id, kind, rule_id
        )
        return status != "DELETE 0"

    async def set_enabled(self, user_id: str, kind: str, rule_id: str, enabled: bool) -> bool:
        status = await self._db.execute(
            "UPDATE push_rules SET enabled = $4 WHERE user_id = $1 AND kind = $2 AND rule_id = $3",
            user_id, kind, rule_id, enabled,
        )
        return status != "UPDATE 0"

    async def set_actions(self, user_id: str, kind: str, rule_id: str, actions: list[Any]) -> bool:
        status = await self._db.execute(
            "UPDATE push_rules SET actions = $4 WHERE user_id = $1 AND kind = $2 AND rule_id = $3",
            user_id, kind, rule_id, actions,
        )
        return status != "UPDATE 0"

    async def set_default_enabled(self, user_id: str, kind: str, rule_id: str, enabled: bool) -> None:
        await self._db.execute(
            """INSERT INTO push_rule_defaults (user_id, kind, rule_id, enabled) VALUES ($1, $2, $3, $4)
               ON CONFLICT (user_id, kind, rule_id) DO UPDATE SET enabled = EXCLUDED.enabled""",
            user_id, kind, rule_id, enabled,
        )

    async def set_default_actions(self, user_id: str, kind: str, rule_id: str, actions: list[Any]) -> None:
        await self._db.execute(
            """INSERT INTO push_rule_defaults (user_id, kind, rule_id, actions) VALUES ($1, $2, $3, $4)
               ON CONFLICT (user_id, kind, rule_id) DO UPDATE SET actions = EXCLUDED.actions""",
            user_id, kind, rule_id, actions,
        )


# --- pushers ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PusherRow:
    user_id: str
    app_id: str
    pushkey: str
    device_id: str
    kind: str
    app_display_name: str
    device_display_name: str
    profile_tag: str | None
    lang: str
    data: dict[str, Any]
    pushkey_ts: int


_PUSHER_COLUMNS = """user_id, app_id, pushkey, device_id, kind, app_display_name, device_display_name,
    profile_tag, lang, data, pushkey_ts"""


class PusherStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def put(self, pusher: PusherRow, *, remove_other_users: bool) -> None:
        """Create or replace the user's pusher with this app ID and pushkey; with
        `remove_other_users`, other users' pushers with the same app ID and pushkey go."""
        p = pusher
        await self._db.execute(
            f"""WITH others AS (
                    DELETE FROM pushers WHERE $12 AND app_id = $2 AND pushkey = $3 AND user_id <> $1
                )
                INSERT INTO pushers ({_PUSHER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                ON CONFLICT (user_id, app_id, pushkey) DO UPDATE SET
                    device_id = EXCLUDED.device_id, kind = EXCLUDED.kind,
                    app_display_name = EXCLUDED.app_display_name,
                    device_display_name = EXCLUDED.device_display_name, profile_tag = EXCLUDED.profile_tag,
                    lang = EXCLUDED.lang, data = EXCLUDED.data, pushkey_ts = EXCLUDED.pushkey_ts""",
            p.user_id, p.app_id, p.pushkey, p.device_id, p.kind, p.app_display_name, p.device_display_name,
            p.profile_tag, p.lang, p.data, p.pushkey_ts, remove_other_users,
        )

    async def delete(self, user_id: str, app_id: str, pushkey: str) -> bool:
        status = await self._db.execute(
            "DELETE FROM pushers WHERE user_id = $1 AND app_id = $2 AND pushkey = $3", user_id, app_id, pushkey
        )
        return status != "DELETE 0"

    async def of_user(self, user_id: str) -> list[PusherRow]:
        rows = await self._db.fetch(
            f"SELECT {_PUSHER_COLUMNS} FROM pushers WHERE user_id = $1 ORDER BY app_id, pushkey", user_id
        )
        return [PusherRow(**r) for r in rows]

    async def of_users(self, user_ids: Sequence[str]) -> list[PusherRow]:
        # The IDs as one JSON document: a message's notified users may be a room's thousands
        # of members, and asyncpg encodes a text[] element by element (see PushActionStore.add).
        rows = await self._db.fetch(
            f"""SELECT {_PUSHER_COLUMNS} FROM pushers
                WHERE user_id IN (SELECT jsonb_array_elements_text($1::jsonb))""", list(user_ids)
        )
        return [PusherRow(**r) for r in rows]


# --- push actions ------------------------------------------------------------------------------

# Not frozen: one is made per member a message notifies (5,000 in a room of 5,000), and a
# frozen dataclass's __init__ costs three times as much.
@dataclass(slots=True)
class PushAction:
    user_id: str
    room_id: str
    event_id: str
    stream_ordering: int
    thread_id: str | None
    notify: bool
    highlight: bool
    actions: Sequence[Any]  # shared by the members who got the same actions
    ts: int


@dataclass(frozen=True, slots=True)
class UnreadCount:
    room_id: str
    thread_id: str | None
    notifications: int
    highlights: int


_ACTION_COLUMNS = "user_id, room_id, event_id, stream_ordering, thread_id, notify, highlight, actions, ts"


class PushActionStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, actions: Sequence[PushAction]) -> None:
        """Store the push actions of a batch of events for all their users: one statement.

        Sent as one JSON document of groups, one per event and outcome with the list of its
        users, not as arrays of one element per row: asyncpg encodes an array element by
        element in Python (about 1 µs each, 30 ms for a message to 5,000 members), while
        the document costs one orjson call and PostgreSQL unpacks it."""
        if not actions:
            return
        groups: dict[tuple[Any, ...], list[str]] = {}
        outcomes: dict[int, Sequence[Any]] = {}
        for x in actions:
            key = (x.room_id, x.event_id, x.stream_ordering, x.thread_id, x.notify, x.highlight, id(x.actions), x.ts)
            users = groups.get(key)
            if users is None:
                users = groups[key] = []
                outcomes[id(x.actions)] = x.actions
            users.append(x.user_id)
        document = [[*key[:6], outcomes[key[6]], key[7], users] for key, users in groups.items()]
        await self._db.execute(
            f"""INSERT INTO event_push_actions ({_ACTION_COLUMNS})
                SELECT u.user_id, g->>0, g->>1, (g->>2)::bigint, g->>3, (g->>4)::bool, (g->>5)::bool,
                       g->6, (g->>7)::bigint
                FROM jsonb_array_elements($1::jsonb) AS g, jsonb_array_elements_text(g->8) AS u(user_id)
                ON CONFLICT DO NOTHING""",
            document,
        )

    async def delete_for_events(self, event_ids: Sequence[str]) -> None:
        await self._db.execute("DELETE FROM event_push_actions WHERE event_id = ANY($1::text[])", list(event_ids))

    async def delete_room(self, room_id: str) -> None:
        """The actions of the room's events (before the events go: found through them)."""
        await self._db.execute(
            """DELETE FROM event_push_actions
               WHERE event_id IN (SELECT event_id FROM events WHERE room_id = $1)""",
            room_id,
        )

    async def counts(self, user_id: str, rooms: Sequence[tuple[str, int]],
                     threads: Sequence[tuple[str, str, int]]) -> list[UnreadCount]:
        """Unread notification and highlight counts per (room, thread), in one query.

        `rooms`: (room_id, position) — actions at or below the position are read (the
        unthreaded receipt, 0 when none). `threads`: (room_id, thread key, position) — the
        receipt of one thread ("main" for the main timeline, else the thread root's ID).
        """
        rows = await self._db.fetch(
            """WITH rooms AS (SELECT * FROM unnest($2::text[], $3::bigint[]) AS r(room_id, upto)),
                    threads AS (SELECT * FROM unnest($4::text[], $5::text[], $6::bigint[])
                                AS t(room_id, thread_key, upto))
               SELECT a.room_id, a.thread_id,
                      count(*) FILTER (WHERE a.notify) AS notifications,
                      count(*) FILTER (WHERE a.highlight) AS highlights
               FROM rooms r
               JOIN event_push_actions a ON a.user_id = $1 AND a.room_id = r.room_id AND a.stream_ordering > r.upto
               LEFT JOIN threads t ON t.room_id = a.room_id AND t.thread_key = coalesce(a.thread_id, 'main')
               WHERE a.stream_ordering > coalesce(t.upto, 0)
               GROUP BY a.room_id, a.thread_id""",
            user_id, [r[0] for r in rooms], [r[1] for r in rooms],
            [t[0] for t in threads], [t[1] for t in threads], [t[2] for t in threads],
        )
        return [UnreadCount(**r) for r in rows]

    async def counts_after_receipts(self, pairs: Sequence[tuple[str, str]]) -> list[tuple[str, UnreadCount]]:
        """(user_id, count) of the unread counts per (room, thread) for (user_id, room_id)
        pairs, each user's read receipts (table receipts: m.read and m.read.private, the later
        one) read in the same query: `counts` for many users at once, with no separate
        receipts round trip."""
        rows = await self._db.fetch(
            """WITH wanted AS (SELECT DISTINCT p->>0 AS user_id, p->>1 AS room_id FROM jsonb_array_elements($1::jsonb) p),
                    read AS (SELECT r.user_id, r.room_id, r.thread_id, max(r.event_stream_ordering) AS upto
                             FROM receipts r JOIN wanted w ON w.user_id = r.user_id AND w.room_id = r.room_id
                             WHERE r.receipt_type IN ('m.read', 'm.read.private')
                             GROUP BY r.user_id, r.room_id, r.thread_id)
               SELECT a.user_id, a.room_id, a.thread_id,
                      count(*) FILTER (WHERE a.notify) AS notifications,
                      count(*) FILTER (WHERE a.highlight) AS highlights
               FROM wanted w
               JOIN event_push_actions a ON a.user_id = w.user_id AND a.room_id = w.room_id
               LEFT JOIN read whole ON whole.user_id = w.user_id AND whole.room_id = w.room_id
                                   AND whole.thread_id = ''
               LEFT JOIN read own ON own.user_id = w.user_id AND own.room_id = w.room_id
                                 AND own.thread_id = coalesce(a.thread_id, 'main')
               WHERE a.stream_ordering > coalesce(whole.upto, 0) AND a.stream_ordering > coalesce(own.upto, 0)
               GROUP BY a.user_id, a.room_id, a.thread_id""",
            # As one JSON document: the waiting /syncs of a big room ask for thousands of pairs
            # at once, and asyncpg encodes an array element by element (see `add`).
            list(pairs),
        )
        return [(r["user_id"], UnreadCount(r["room_id"], r["thread_id"], r["notifications"], r["highlights"]))
                for r in rows]

    async def page(self, user_id: str, *, before: int | None, limit: int, only_highlight: bool) -> list[PushAction]:
        """The user's push actions, newest first, strictly before a stream position."""
        rows = await self._db.fetch(
            f"""SELECT {_ACTION_COLUMNS} FROM event_push_actions
                WHERE user_id = $1 AND ($2::bigint IS NULL OR stream_ordering < $2) AND (highlight OR NOT $3)
                ORDER BY stream_ordering DESC LIMIT $4""",
            user_id, before, only_highlight, limit,
        )
        return [PushAction(**r) for r in rows]

    async def threads_of(self, event_ids: Sequence[str], max_hops: int) -> dict[str, str]:
        """event_id -> the root of the thread it is in, following its relations up to
        `max_hops` events (spec: threaded read receipts). Events in no thread are absent."""
        rows = await self._db.fetch(
            """WITH RECURSIVE chain (start_id, relates_to, rel_type, hops) AS (
                   SELECT e.event_id, e.relates_to, e.rel_type, 1 FROM events e WHERE e.event_id = ANY($1::text[])
                 UNION ALL
                   SELECT c.start_id, p.relates_to, p.rel_type, c.hops + 1
                   FROM chain c JOIN events p ON p.event_id = c.relates_to
                   WHERE c.rel_type IS DISTINCT FROM 'm.thread' AND c.hops < $2
               )
               SELECT start_id, relates_to FROM chain WHERE rel_type = 'm.thread'""",
            list(event_ids), max_hops,
        )
        return {r["start_id"]: r["relates_to"] for r in rows}
