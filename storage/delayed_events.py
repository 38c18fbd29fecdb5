"""DelayedEventStore: events local users scheduled to send later (MSC4140). Tables: delayed_events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from storage.database import Database

_COLUMNS = "delay_id, user_id, device_id, room_id, event_type, state_key, content, delay_ms, send_ts"


@dataclass(frozen=True, slots=True)
class DelayedEvent:
    delay_id: str
    user_id: str
    device_id: str | None
    room_id: str
    event_type: str
    state_key: str | None  # None: a message event
    content: dict[str, Any]
    delay_ms: int
    send_ts: int  # when it is due


@dataclass(frozen=True, slots=True)
class Added:
    """What `add` did: the delayed event's ID (None when the user's limit was reached), and
    whether it is a new one (False: the transaction ID had already scheduled it)."""
    delay_id: str | None
    new: bool


class DelayedEventStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, event: DelayedEvent, txn_id: str | None, limit: int) -> Added:
        """Schedule `event`, unless its user already has `limit` delayed events, or the same
        transaction (user, device, room, txn_id) already scheduled one: then that one's ID."""
        row = await self._db.fetchrow(
            f"""WITH existing AS (
                    SELECT delay_id FROM delayed_events
                    WHERE $10::text IS NOT NULL AND user_id = $2 AND device_id = $3 AND room_id = $4
                      AND txn_id = $10
                ), inserted AS (
                    INSERT INTO delayed_events ({_COLUMNS}, txn_id)
                    SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10
                    WHERE NOT EXISTS (SELECT 1 FROM existing)
                      AND (SELECT count(*) FROM delayed_events WHERE user_id = $2) < $11
                    ON CONFLICT DO NOTHING
                    RETURNING delay_id
                )
                SELECT (SELECT delay_id FROM existing) AS existing, (SELECT delay_id FROM inserted) AS inserted""",
            event.delay_id, event.user_id, event.device_id, event.room_id, event.event_type, event.state_key,
            event.content, event.delay_ms, event.send_ts, txn_id, limit,
        )
        if row["existing"] is not None:
            return Added(row["existing"], new=False)
        if row["inserted"] is None and txn_id is not None:
            # Perhaps a concurrent retry of the same transaction inserted first (the conflict
            # waited for it to commit).
            existing = await self._db.fetchval(
                """SELECT delay_id FROM delayed_events
                   WHERE user_id = $1 AND device_id = $2 AND room_id = $3 AND txn_id = $4""",
                event.user_id, event.device_id, event.room_id, txn_id)
            if existing is not None:
                return Added(existing, new=False)
        return Added(row["inserted"], new=row["inserted"] is not None)

    async def due_when_below_limit(self, user_id: str, limit: int) -> int | None:
        """When enough of the user's delayed events will have been sent for them to be under
        `limit` again (None when they already are)."""
        return await self._db.fetchval(
            """SELECT send_ts FROM (
                   SELECT send_ts, row_number() OVER (ORDER BY send_ts) AS n, count(*) OVER () AS total
                   FROM delayed_events WHERE user_id = $1) AS mine
               WHERE n = total - $2 + 1""",
            user_id, limit,
        )

    async def list_for_user(self, user_id: str) -> list[DelayedEvent]:
        """The user's delayed events still waiting (not being sent), soonest first."""
        rows = await self._db.fetch(
            f"""SELECT {_COLUMNS} FROM delayed_events WHERE user_id = $1 AND claimed_ts IS NULL
                ORDER BY send_ts""",
            user_id,
        )
        return [DelayedEvent(**row) for row in rows]

    async def cancel(self, delay_id: str, owner: str | None) -> bool:
        """Delete a waiting delayed event (of `owner`, when given); False when there is none."""
        status = await self._db.execute(
            """DELETE FROM delayed_events
               WHERE delay_id = $1 AND claimed_ts IS NULL AND ($2::text IS NULL OR user_id = $2)""",
            delay_id, owner,
        )
        return status != "DELETE 0"

    async def restart(self, delay_id: str, owner: str | None, now: int) -> int | None:
        """Make a waiting delayed event due `delay_ms` from `now`; its new due time, or None
        when there is no such event."""
        return await self._db.fetchval(
            """UPDATE delayed_events SET send_ts = $3 + delay_ms
               WHERE delay_id = $1 AND claimed_ts IS NULL AND ($2::text IS NULL OR user_id = $2)
               RETURNING send_ts""",
            delay_id, owner, now,
        )

    async def claim(self, delay_id: str, owner: str | None, now: int) -> DelayedEvent | None:
        """Claim one waiting delayed event to send it now, whatever its due time."""
        row = await self._db.fetchrow(
            f"""UPDATE delayed_events SET claimed_ts = $3
                WHERE delay_id = $1 AND claimed_ts IS NULL AND ($2::text IS NULL OR user_id = $2)
                RETURNING {_COLUMNS}""",
            delay_id, owner, now,
        )
        return DelayedEvent(**row) if row else None

    async def claim_due(self, now: int, stale_before: int, limit: int) -> list[DelayedEvent]:
        """Claim up to `limit` due events, soonest first: waiting ones, and those whose claim
        is older than `stale_before` (their sender died). Rows another process is claiming
        at the same moment are skipped, so each is claimed once."""
        rows = await self._db.fetch(
            f"""UPDATE delayed_events SET claimed_ts = $1
                WHERE delay_id IN (
                    SELECT delay_id FROM delayed_events
                    WHERE send_ts <= $1 AND (claimed_ts IS NULL OR claimed_ts < $2)
                    ORDER BY send_ts LIMIT $3
                    FOR UPDATE SKIP LOCKED)
                RETURNING {_COLUMNS}""",
            now, stale_before, limit,
        )
        return sorted((DelayedEvent(**row) for row in rows), key=lambda e: e.send_ts)

    async def next_due(self, claim_ms: int) -> int | None:
        """When something will next be due: the earliest waiting event, or the moment the
        oldest claim goes stale."""
        return await self._db.fetchval(
            """SELECT least(
                   (SELECT send_ts FROM delayed_events WHERE claimed_ts IS NULL ORDER BY send_ts LIMIT 1),
                   (SELECT min(claimed_ts) + $1 FROM delayed_events WHERE claimed_ts IS NOT NULL))""",
            claim_ms,
        )

    async def release(self, delay_ids: Sequence[str], claimed_ts: int) -> None:
        """Give back claims that were not sent (the scheduler is stopping)."""
        await self._db.execute(
            "UPDATE delayed_events SET claimed_ts = NULL WHERE delay_id = ANY($1::text[]) AND claimed_ts = $2",
            list(delay_ids), claimed_ts,
        )

    async def delete(self, delay_id: str) -> None:
        """A claimed event was sent (or could not be): it is done."""
        await self._db.execute("DELETE FROM delayed_events WHERE delay_id = $1", delay_id)

    async def cancel_for_state(self, changes: Sequence[tuple[str, str, str, str]]) -> int:
        """New state (room_id, event_type, state_key, sender): cancel the waiting delayed state
        events for the same state of every user but the sender. Returns how many."""
        status = await self._db.execute(
            """DELETE FROM delayed_events d
               USING unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS s(room_id, event_type, state_key, sender)
               WHERE d.state_key IS NOT NULL AND d.room_id = s.room_id AND d.event_type = s.event_type
                 AND d.state_key = s.state_key AND d.user_id <> s.sender AND d.claimed_ts IS NULL""",
            [c[0] for c in changes], [c[1] for c in changes], [c[2] for c in changes], [c[3] for c in changes],
        )
        return int(status.split()[-1])
