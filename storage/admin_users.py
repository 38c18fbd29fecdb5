"""AdminUserQueries: what the admin API reads about local accounts, each answer in one query.
Reads users, profiles, erased_users, devices, current_state, room_memberships and events;
writes nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from storage.database import Database

# The sort orders of GET /_synapse/admin/v2/users, as columns of the query's `filtered` set.
ORDER_COLUMNS = {
    "name": "user_id", "is_guest": "is_guest", "admin": "is_admin", "user_type": "user_type",
    "deactivated": "deactivated", "shadow_banned": "shadow_banned", "displayname": "displayname",
    "avatar_url": "avatar_url", "creation_ts": "created_ts", "last_seen_ts": "last_seen_ts", "locked": "locked",
}


@dataclass(frozen=True, slots=True)
class UserFilter:
    """Which accounts a listing shows; None = no filter on that property."""
    user_id: str | None = None      # user IDs containing this (ignored when `name` is given)
    name: str | None = None         # localparts or display names containing this
    guests: bool = True             # include guests
    deactivated: bool | None = False
    admins: bool | None = None
    include_locked: bool = False
    not_user_types: Sequence[str] = ()  # "" stands for "no type"


@dataclass(frozen=True, slots=True)
class AdminUserRow:
    user_id: str
    user_type: str | None
    is_guest: bool
    is_admin: bool
    deactivated: bool
    shadow_banned: bool
    locked: bool
    suspended: bool
    created_ts: int
    displayname: str | None
    avatar_url: str | None
    erased: bool
    last_seen_ts: int | None


_ROW_COLUMNS = """u.user_id, u.user_type, u.is_guest, u.is_admin, u.deactivated, u.shadow_banned, u.locked,
                  u.suspended, u.created_ts, p.displayname, p.avatar_url"""
_LAST_SEEN = "(SELECT max(d.last_seen_ts) FROM devices d WHERE d.user_id = u.user_id)"


class AdminUserQueries:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def page(self, f: UserFilter, order_by: str, descending: bool, offset: int,
                   limit: int) -> tuple[list[AdminUserRow], int]:
        """One page of accounts and how many match in all: one query."""
        where, args = _where(f)
        column = ORDER_COLUMNS[order_by]
        direction = "DESC" if descending else "ASC"
        # The last-seen time is computed for every matching account only when it orders them.
        last_seen = _LAST_SEEN if order_by == "last_seen_ts" else "NULL::bigint"
        n = len(args)
        rows = await self._db.fetch(
            f"""WITH filtered AS (
                    SELECT {_ROW_COLUMNS}, {last_seen} AS last_seen_ts
                    FROM users u LEFT JOIN profiles p ON p.user_id = u.user_id
                    WHERE {where})
                SELECT c.total, f.*,
                       EXISTS (SELECT 1 FROM erased_users e WHERE e.user_id = f.user_id) AS erased,
                       coalesce(f.last_seen_ts, (SELECT max(d.last_seen_ts) FROM devices d
                                                 WHERE d.user_id = f.user_id)) AS seen
                FROM (SELECT count(*) AS total FROM filtered) c
                LEFT JOIN LATERAL (SELECT * FROM filtered ORDER BY {column} {direction}, user_id
                                   LIMIT ${n + 1} OFFSET ${n + 2}) f ON TRUE
                ORDER BY f.{column} {direction}, f.user_id""",
            *args, limit, offset)
        total = rows[0]["total"] if rows else 0
        users = [_row(r, last_seen_ts=r["seen"]) for r in rows if r["user_id"] is not None]
        return users, total

    async def user(self, user_id: str) -> AdminUserRow | None:
        row = await self._db.fetchrow(
            f"""SELECT {_ROW_COLUMNS}, {_LAST_SEEN} AS last_seen_ts,
                       EXISTS (SELECT 1 FROM erased_users e WHERE e.user_id = u.user_id) AS erased
                FROM users u LEFT JOIN profiles p ON p.user_id = u.user_id WHERE u.user_id = $1""",
            user_id)
        return _row(row, last_seen_ts=row["last_seen_ts"]) if row else None

    async def memberships(self, user_id: str) -> dict[str, str]:
        """room_id -> the user's membership there, in the rooms this server knows."""
        rows = await self._db.fetch(
            """SELECT room_id, membership FROM current_state
               WHERE type = 'm.room.member' AND state_key = $1 AND membership IS NOT NULL""", user_id)
        return {r["room_id"]: r["membership"] for r in rows}

    async def sent_invite_count(self, user_id: str, from_ts: int) -> int:
        """Invites the user sent that this server received at or after `from_ts`."""
        return await self._db.fetchval(
            """SELECT count(*) FROM room_memberships m JOIN events e ON e.event_id = m.event_id
               WHERE m.sender = $1 AND m.membership = 'invite' AND m.user_id <> $1 AND e.received_ts >= $2""",
            user_id, from_ts)

    async def rooms_joined_since(self, user_id: str, from_ts: int) -> int:
        """Rooms the user joined at or after `from_ts`, whether still in them or not."""
        return await self._db.fetchval(
            """SELECT count(DISTINCT m.room_id) FROM room_memberships m JOIN events e ON e.event_id = m.event_id
               WHERE m.user_id = $1 AND m.membership = 'join' AND e.received_ts >= $2""",
            user_id, from_ts)


def _row(r: Any, *, last_seen_ts: int | None) -> AdminUserRow:
    return AdminUserRow(
        user_id=r["user_id"], user_type=r["user_type"], is_guest=r["is_guest"], is_admin=r["is_admin"],
        deactivated=r["deactivated"], shadow_banned=r["shadow_banned"], locked=r["locked"],
        suspended=r["suspended"], created_ts=r["created_ts"], displayname=r["displayname"],
        avatar_url=r["avatar_url"], erased=r["erased"], last_seen_ts=last_seen_ts)


def _where(f: UserFilter) -> tuple[str, list[Any]]:
    clauses, args = ["TRUE"], []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if f.name:
        needle = arg(f.name.lower())
        clauses.append(f"(strpos(lower(split_part(substr(u.user_id, 2), ':', 1)), {needle}) > 0"
                       f" OR strpos(lower(p.displayname), {needle}) > 0)")
    elif f.user_id:
        clauses.append(f"strpos(lower(u.user_id), {arg(f.user_id.lower())}) > 0")
    if not f.guests:
        clauses.append("NOT u.is_guest")
    if f.deactivated is not None:
        clauses.append("u.deactivated" if f.deactivated else "NOT u.deactivated")
    if not f.include_locked:
        clauses.append("NOT u.locked")
    if f.admins is not None:
        clauses.append("u.is_admin" if f.admins else "NOT u.is_admin")
    if f.not_user_types:
        named = [t for t in f.not_user_types if t]
        if "" in f.not_user_types:  # accounts without a type go too
            clauses.append(f"u.user_type IS NOT NULL AND u.user_type <> ALL({arg(named)}::text[])")
        else:
            clauses.append(f"(u.user_type IS NULL OR u.user_type <> ALL({arg(named)}::text[]))")
    return " AND ".join(clauses), args
