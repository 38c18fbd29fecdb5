"""Application services' feeds.

AppServiceStore: where each appservice's feed stands, its back-off and lease, and the
transactions built for it and not yet acknowledged. Tables: appservice_state, appservice_txns.
AppServiceQueries: what the feeds read from the rest of the server. Tables read: events,
current_state, room_aliases, stripped_room_state, receipts, presence, device_inbox, device_list_changes, devices,
e2e_one_time_keys, e2e_fallback_keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from storage.database import Database
from storage.receipts import ReceiptRow


@dataclass(frozen=True, slots=True)
class FeedState:
    event_position: int
    aux_position: int
    last_txn_id: int
    retry_last_ts: int
    retry_interval: int  # 0: the appservice answers


@dataclass(frozen=True, slots=True)
class FeedSummary:
    """How an appservice's feed stands, for the admin view and /metrics."""
    appservice_id: str
    event_position: int
    retry_last_ts: int
    retry_interval: int  # 0: the appservice answers
    last_success_ts: int | None
    last_error: str | None
    lease_owner: str | None
    lease_until: int
    pending_transactions: int
    pending_events: int
    oldest_pending_ts: int | None


@dataclass(frozen=True, slots=True)
class StoredTxn:
    txn_id: int
    body: dict[str, Any]
    event_count: int


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """What deciding who wants an event needs (the PDU is read only for those that do)."""
    stream_ordering: int
    event_id: str
    room_id: str
    type: str
    state_key: str | None
    sender: str


class AppServiceStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def ensure(self, appservice_id: str, event_position: int, aux_position: int) -> None:
        """A feed for a newly registered appservice starts at the streams' current ends (it
        gets what happens from now on, not the server's history)."""
        await self._db.execute(
            """INSERT INTO appservice_state (appservice_id, event_position, aux_position) VALUES ($1, $2, $3)
               ON CONFLICT (appservice_id) DO NOTHING""",
            appservice_id, event_position, aux_position,
        )

    async def state(self, appservice_id: str) -> FeedState | None:
        row = await self._db.fetchrow(
            """SELECT event_position, aux_position, last_txn_id, retry_last_ts, retry_interval
               FROM appservice_state WHERE appservice_id = $1""",
            appservice_id,
        )
        return FeedState(**row) if row else None

    async def oldest_txn(self, appservice_id: str) -> StoredTxn | None:
        row = await self._db.fetchrow(
            """SELECT txn_id, body, event_count FROM appservice_txns WHERE appservice_id = $1
               ORDER BY txn_id LIMIT 1""",
            appservice_id,
        )
        return StoredTxn(**row) if row else None

    async def create_txn(self, appservice_id: str, owner: str, event_position: int, aux_position: int,
                         body: dict[str, Any], event_count: int, now_ts: int) -> int | None:
        """Store the next transaction and move the feed's positions past what it holds, in one
        statement; None (nothing written) when `owner` no longer holds the lease."""
        return await self._db.fetchval(
            """WITH s AS (UPDATE appservice_state SET event_position = $3, aux_position = $4,
                                 last_txn_id = last_txn_id + 1
                          WHERE appservice_id = $1 AND lease_owner = $2 RETURNING last_txn_id)
               INSERT INTO appservice_txns (appservice_id, txn_id, body, event_count, created_ts)
               SELECT $1, s.last_txn_id, $5, $6, $7 FROM s RETURNING txn_id""",
            appservice_id, owner, event_position, aux_position, body, event_count, now_ts,
        )

    async def advance(self, appservice_id: str, owner: str, event_position: int, aux_position: int) -> bool:
        """Move the positions past a stretch that held nothing for the appservice."""
        status = await self._db.execute(
            """UPDATE appservice_state SET event_position = greatest(event_position, $3),
                   aux_position = greatest(aux_position, $4)
               WHERE appservice_id = $1 AND lease_owner = $2""",
            appservice_id, owner, event_position, aux_position,
        )
        return status == "UPDATE 1"

    async def complete_txn(self, appservice_id: str, txn_id: int, now_ts: int) -> None:
        """The appservice took the transaction: delete it, note when, and end any back-off, in
        one statement (so that nobody sees it up with the transaction still there, or the reverse)."""
        await self._db.execute(
            """WITH done AS (DELETE FROM appservice_txns WHERE appservice_id = $1 AND txn_id = $2)
               UPDATE appservice_state SET last_success_ts = $3, retry_last_ts = 0, retry_interval = 0,
                   last_error = NULL
               WHERE appservice_id = $1""",
            appservice_id, txn_id, now_ts,
        )

    async def summaries(self) -> list[FeedSummary]:
        """Every feed's state with its stored transactions counted, in one query."""
        rows = await self._db.fetch(
            """SELECT s.appservice_id, s.event_position, s.retry_last_ts, s.retry_interval, s.last_success_ts,
                      s.last_error, s.lease_owner, s.lease_until,
                      count(t.txn_id)::int AS pending_transactions,
                      coalesce(sum(t.event_count), 0)::int AS pending_events,
                      min(t.created_ts) AS oldest_pending_ts
               FROM appservice_state s LEFT JOIN appservice_txns t ON t.appservice_id = s.appservice_id
               GROUP BY s.appservice_id ORDER BY s.appservice_id"""
        )
        return [FeedSummary(**r) for r in rows]

    async def record_failure(self, appservice_id: str, now_ts: int, interval_ms: int, error: str) -> None:
        await self._db.execute(
            """UPDATE appservice_state SET retry_last_ts = $2, retry_interval = $3, last_error = $4
               WHERE appservice_id = $1""",
            appservice_id, now_ts, interval_ms, error,
        )


    async def acquire_lease(self, appservice_id: str, owner: str, now_ts: int, until_ts: int) -> bool:
        """Take (or extend) the right to feed the appservice; False while another process
        holds an unexpired lease."""
        row = await self._db.fetchval(
            """UPDATE appservice_state SET lease_owner = $2, lease_until = $4
               WHERE appservice_id = $1 AND (lease_owner IS NULL OR lease_owner = $2 OR lease_until <= $3)
               RETURNING 1""",
            appservice_id, owner, now_ts, until_ts,
        )
        return row is not None

    async def release_lease(self, appservice_id: str, owner: str) -> None:
        await self._db.execute(
            """UPDATE appservice_state SET lease_owner = NULL, lease_until = 0
               WHERE appservice_id = $1 AND lease_owner = $2""",
            appservice_id, owner,
        )


class AppServiceQueries:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def events_after(self, after: int, upto: int, limit: int) -> list[StreamEvent]:
        """Events in (after, upto], in stream order: the timeline and the memberships in rooms
        we are not in (invites from other servers: outliers with a position). Rejected and
        soft-failed ones are nobody's news."""
        rows = await self._db.fetch(
            """SELECT stream_ordering, event_id, room_id, type, state_key, sender FROM events
               WHERE stream_ordering > $1 AND stream_ordering <= $2
                 AND rejected_reason IS NULL AND NOT soft_failed
               ORDER BY stream_ordering LIMIT $3""",
            after, upto, limit,
        )
        return [StreamEvent(**r) for r in rows]

    async def local_joined_members(self, room_id: str, server_name: str) -> list[str]:
        rows = await self._db.fetch(
            """SELECT state_key FROM current_state WHERE room_id = $1 AND type = 'm.room.member'
               AND membership = 'join' AND right(state_key, length($2)) = $2""",
            room_id, ":" + server_name,
        )
        return [r["state_key"] for r in rows]

    async def stripped_state(self, event_id: str) -> list[dict[str, Any]] | None:
        """The stripped room state an invite from another server came with."""
        return await self._db.fetchval("SELECT state FROM stripped_room_state WHERE event_id = $1", event_id)

    async def aliases_of_room(self, room_id: str) -> list[str]:
        rows = await self._db.fetch("SELECT alias FROM room_aliases WHERE room_id = $1", room_id)
        return [r["alias"] for r in rows]

    async def joined_rooms(self, user_id: str) -> list[str]:
        rows = await self._db.fetch(
            """SELECT room_id FROM current_state WHERE type = 'm.room.member' AND state_key = $1
               AND membership = 'join'""",
            user_id,
        )
        return [r["room_id"] for r in rows]

    async def existing_users(self, user_ids: Sequence[str]) -> set[str]:
        rows = await self._db.fetch("SELECT user_id FROM users WHERE user_id = ANY($1::text[])", list(user_ids))
        return {r["user_id"] for r in rows}

    # --- the aux stream ------------------------------------------------------------------------

    async def receipts_between(self, after: int, upto: int) -> list[ReceiptRow]:
        rows = await self._db.fetch(
            """SELECT room_id, receipt_type, user_id, thread_id, event_id, ts, stream_id FROM receipts
               WHERE stream_id > $1 AND stream_id <= $2 ORDER BY stream_id""",
            after, upto,
        )
        return [ReceiptRow(**r) for r in rows]

    async def presence_changed_between(self, after: int, upto: int) -> list[str]:
        rows = await self._db.fetch(
            "SELECT user_id FROM presence WHERE stream_id > $1 AND stream_id <= $2 ORDER BY stream_id", after, upto)
        return [r["user_id"] for r in rows]

    async def to_device_between(self, after: int, upto: int, limit: int) -> list[tuple[str, str, int, dict[str, Any]]]:
        """(user_id, device_id, stream_id, message) of to-device messages waiting in inboxes."""
        rows = await self._db.fetch(
            """SELECT user_id, device_id, stream_id, message FROM device_inbox
               WHERE stream_id > $1 AND stream_id <= $2 ORDER BY stream_id, user_id, device_id LIMIT $3""",
            after, upto, limit,
        )
        return [(r["user_id"], r["device_id"], r["stream_id"], r["message"]) for r in rows]

    async def device_lists_changed_between(self, after: int, upto: int) -> list[str]:
        rows = await self._db.fetch(
            """SELECT DISTINCT user_id FROM device_list_changes WHERE stream_id > $1 AND stream_id <= $2""",
            after, upto,
        )
        return [r["user_id"] for r in rows]

    async def one_time_key_counts(self, user_ids: Sequence[str]) -> dict[str, dict[str, dict[str, int]]]:
        """user -> device -> algorithm -> unused one-time keys, every device of the users listed
        (an empty mapping for a device without keys, as Synapse sends)."""
        rows = await self._db.fetch(
            """SELECT d.user_id, d.device_id, k.algorithm, count(k.key_id) AS n FROM devices d
               LEFT JOIN e2e_one_time_keys k ON k.user_id = d.user_id AND k.device_id = d.device_id
               WHERE d.user_id = ANY($1::text[]) GROUP BY d.user_id, d.device_id, k.algorithm""",
            list(user_ids),
        )
        out: dict[str, dict[str, dict[str, int]]] = {}
        for r in rows:
            counts = out.setdefault(r["user_id"], {}).setdefault(r["device_id"], {})
            if r["algorithm"] is not None:
                counts[r["algorithm"]] = r["n"]
        return out

    async def unused_fallback_key_types(self, user_ids: Sequence[str]) -> dict[str, dict[str, list[str]]]:
        rows = await self._db.fetch(
            """SELECT d.user_id, d.device_id, f.algorithm FROM devices d
               LEFT JOIN e2e_fallback_keys f ON f.user_id = d.user_id AND f.device_id = d.device_id AND NOT f.used
               WHERE d.user_id = ANY($1::text[]) ORDER BY f.algorithm""",
            list(user_ids),
        )
        out: dict[str, dict[str, list[str]]] = {}
        for r in rows:
            types = out.setdefault(r["user_id"], {}).setdefault(r["device_id"], [])
            if r["algorithm"] is not None:
                types.append(r["algorithm"])
        return out
