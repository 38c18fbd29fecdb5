"""The outbound federation queue and who to send to.

FederationQueueStore: items waiting for other servers, each destination's back-off and how far
its deliveries got (overall and per room), and the last device-list update sent per user.
Tables: federation_outbox, federation_queue, federation_destinations,
federation_destination_rooms, federation_device_list_sent.
DestinationQueries: the servers a room's or a user's events go to. Tables read: current_state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from storage.database import Database


@dataclass(frozen=True, slots=True)
class QueuedItem:
    item_id: int
    kind: str  # 'pdu' or 'edu'
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RetryState:
    retry_last_ts: int
    retry_interval: int  # 0: healthy


class FederationQueueStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def enqueue(self, destinations: list[str], kind: str, body: dict[str, Any], now_ts: int,
                      room_id: str | None = None, stream_ordering: int | None = None) -> None:
        """One item for several destinations, in one statement (it joins an ambient transaction)."""
        if not destinations:
            return
        await self._db.execute(
            """WITH item AS (INSERT INTO federation_outbox (kind, body, created_ts, room_id, stream_ordering)
                             VALUES ($2, $3, $4, $5, $6) RETURNING item_id)
               INSERT INTO federation_queue (destination, item_id, kind)
               SELECT d, item.item_id, $2 FROM unnest($1::text[]) AS d, item""",
            destinations, kind, body, now_ts, room_id, stream_ordering,
        )

    async def next_batch(self, destination: str, max_pdus: int, max_edus: int) -> list[QueuedItem]:
        """The oldest waiting PDUs and EDUs of a destination (each up to its limit), in queue order."""
        rows = await self._db.fetch(
            """SELECT o.item_id, o.kind, o.body FROM federation_outbox o WHERE o.item_id IN (
                   (SELECT item_id FROM federation_queue WHERE destination = $1 AND kind = 'pdu'
                    ORDER BY item_id LIMIT $2)
                   UNION ALL
                   (SELECT item_id FROM federation_queue WHERE destination = $1 AND kind = 'edu'
                    ORDER BY item_id LIMIT $3))
               ORDER BY o.item_id""",
            destination, max_pdus, max_edus,
        )
        return [QueuedItem(r["item_id"], r["kind"], r["body"]) for r in rows]

    async def remove(self, destination: str, item_ids: list[int], *, delivered: bool = False) -> None:
        """Delivered (or given up): off the destination's queue; an item no destination waits
        for any more leaves the outbox. `delivered`: the destination acknowledged them, so its
        latest stream ordering, overall and per room, moves to theirs."""
        async with self._db.transaction():
            if delivered:
                await self._record_delivered(destination, item_ids)
            await self._db.execute(
                "DELETE FROM federation_queue WHERE destination = $1 AND item_id = ANY($2::bigint[])",
                destination, item_ids,
            )
            await self._db.execute(
                """DELETE FROM federation_outbox o WHERE o.item_id = ANY($1::bigint[])
                   AND NOT EXISTS (SELECT 1 FROM federation_queue q WHERE q.item_id = o.item_id)""",
                item_ids,
            )

    async def _record_delivered(self, destination: str, item_ids: list[int]) -> None:
        await self._db.execute(
            """WITH sent AS (
                   SELECT room_id, max(stream_ordering) AS stream_ordering FROM federation_outbox
                   WHERE item_id = ANY($2::bigint[]) AND kind = 'pdu' AND room_id IS NOT NULL
                     AND stream_ordering IS NOT NULL
                   GROUP BY room_id),
               rooms AS (
                   INSERT INTO federation_destination_rooms (destination, room_id, stream_ordering)
                   SELECT $1, room_id, stream_ordering FROM sent
                   ON CONFLICT (destination, room_id) DO UPDATE
                   SET stream_ordering = GREATEST(federation_destination_rooms.stream_ordering,
                                                  EXCLUDED.stream_ordering))
               UPDATE federation_destinations
               SET last_successful_stream_ordering = GREATEST(last_successful_stream_ordering,
                                                              (SELECT max(stream_ordering) FROM sent))
               WHERE destination = $1 AND EXISTS (SELECT 1 FROM sent)""",
            destination, item_ids,
        )

    async def drop_destination(self, destination: str) -> None:
        """Forget everything queued for a destination (one we may no longer talk to)."""
        rows = await self._db.fetch(
            "DELETE FROM federation_queue WHERE destination = $1 RETURNING item_id", destination)
        if rows:
            await self.remove(destination, [r["item_id"] for r in rows])

    async def queued_count(self, destination: str, kind: str | None = None) -> int:
        return await self._db.fetchval(
            "SELECT count(*) FROM federation_queue WHERE destination = $1 AND ($2::text IS NULL OR kind = $2)",
            destination, kind,
        )

    async def keep_latest_pdu_per_room(self, destination: str) -> int:
        """Drop the destination's queued PDUs but the latest of each room; how many went."""
        rows = await self._db.fetch(
            """DELETE FROM federation_queue q USING federation_outbox o
               WHERE q.destination = $1 AND q.kind = 'pdu' AND o.item_id = q.item_id
                 AND q.item_id < (SELECT max(q2.item_id) FROM federation_queue q2
                                  JOIN federation_outbox o2 ON o2.item_id = q2.item_id
                                  WHERE q2.destination = $1 AND q2.kind = 'pdu'
                                    AND o2.room_id IS NOT DISTINCT FROM o.room_id)
               RETURNING q.item_id""",
            destination,
        )
        if rows:
            await self.remove(destination, [r["item_id"] for r in rows])
        return len(rows)

    async def destinations_with_queue(self) -> list[str]:
        rows = await self._db.fetch("SELECT DISTINCT destination FROM federation_queue")
        return [r["destination"] for r in rows]

    async def retry_state(self, destination: str) -> RetryState | None:
        row = await self._db.fetchrow(
            "SELECT retry_last_ts, retry_interval FROM federation_destinations WHERE destination = $1",
            destination,
        )
        return RetryState(row["retry_last_ts"], row["retry_interval"]) if row else None

    async def record_failure(self, destination: str, now_ts: int, interval_ms: int) -> None:
        """A failed attempt: back off; the first failure of a run of them is its failure_ts."""
        await self._db.execute(
            """INSERT INTO federation_destinations (destination, retry_last_ts, retry_interval, failure_ts)
               VALUES ($1, $2, $3, $2)
               ON CONFLICT (destination) DO UPDATE
               SET retry_last_ts = $2, retry_interval = $3,
                   failure_ts = COALESCE(federation_destinations.failure_ts, $2)""",
            destination, now_ts, interval_ms,
        )

    async def record_success(self, destination: str, now_ts: int) -> None:
        await self._db.execute(
            """INSERT INTO federation_destinations (destination, retry_last_ts, retry_interval, last_success_ts)
               VALUES ($1, 0, 0, $2)
               ON CONFLICT (destination) DO UPDATE
               SET retry_last_ts = 0, retry_interval = 0, failure_ts = NULL, last_success_ts = $2""",
            destination, now_ts,
        )

    async def reset_retry(self, destination: str) -> bool:
        """Forget a destination's back-off (an admin's reset); False when it was not backing off."""
        status = await self._db.execute(
            """UPDATE federation_destinations SET retry_last_ts = 0, retry_interval = 0, failure_ts = NULL
               WHERE destination = $1 AND retry_last_ts <> 0""",
            destination,
        )
        return status == "UPDATE 1"

    async def acquire_lease(self, destination: str, owner: str, now_ts: int, until_ts: int) -> bool:
        """Take (or extend) the right to deliver to `destination`; False while another process
        holds an unexpired lease."""
        row = await self._db.fetchval(
            """INSERT INTO federation_destinations (destination, lease_owner, lease_until) VALUES ($1, $2, $4)
               ON CONFLICT (destination) DO UPDATE SET lease_owner = $2, lease_until = $4
               WHERE federation_destinations.lease_owner IS NULL OR federation_destinations.lease_owner = $2
                  OR federation_destinations.lease_until <= $3
               RETURNING 1""",
            destination, owner, now_ts, until_ts,
        )
        return row is not None

    async def release_lease(self, destination: str, owner: str) -> None:
        await self._db.execute(
            """UPDATE federation_destinations SET lease_owner = NULL, lease_until = 0
               WHERE destination = $1 AND lease_owner = $2""",
            destination, owner,
        )

    async def swap_device_list_stream(self, user_id: str, stream_id: int) -> int | None:
        """Record `stream_id` as the user's last device-list update sent; return the one before
        (atomically: the sub-select sees the row as it was before this statement)."""
        return await self._db.fetchval(
            """INSERT INTO federation_device_list_sent (user_id, stream_id) VALUES ($1, $2)
               ON CONFLICT (user_id) DO UPDATE SET stream_id = EXCLUDED.stream_id
               RETURNING (SELECT stream_id FROM federation_device_list_sent WHERE user_id = $1)""",
            user_id, stream_id,
        )


class DestinationQueries:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def joined_servers(self, room_id: str) -> set[str]:
        """The servers of the room's joined members (a user ID's server is all after the first ':')."""
        rows = await self._db.fetch(
            """SELECT DISTINCT substring(state_key FROM position(':' IN state_key) + 1) AS server
               FROM current_state WHERE room_id = $1 AND type = 'm.room.member' AND membership = 'join'""",
            room_id,
        )
        return {r["server"] for r in rows}

    async def servers_sharing_rooms(self, user_id: str) -> set[str]:
        """The servers of everyone joined to a room `user_id` is joined to."""
        rows = await self._db.fetch(
            """SELECT DISTINCT substring(theirs.state_key FROM position(':' IN theirs.state_key) + 1) AS server
               FROM current_state mine JOIN current_state theirs ON theirs.room_id = mine.room_id
               WHERE mine.type = 'm.room.member' AND mine.state_key = $1 AND mine.membership = 'join'
                 AND theirs.type = 'm.room.member' AND theirs.membership = 'join'""",
            user_id,
        )
        return {r["server"] for r in rows}
