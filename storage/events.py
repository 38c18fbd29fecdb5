"""EventStore: the room DAG. Tables: events, event_edges, event_auth_edges, forward_extremities,
current_state, room_memberships, redactions, event_txn_ids, state_groups, state_group_entries,
room_heads, room_stats (figures of each room's current state, updated with it).

`persist()` writes a whole batch of events — rows, edges, extremities, new state snapshots,
current-state changes, memberships, redactions and transaction IDs — in ONE SQL statement
(data-modifying CTEs over unnest()ed arrays): one round trip, atomic without BEGIN/COMMIT.
The service computes everything (positions, snapshots, deltas) before calling it.

The same statement checks the batch's transaction IDs (none may have produced an event in
the room yet: idempotency without a lookup of its own) and claims the room first: it bumps the room's `room_heads` version through
INSERT .. ON CONFLICT DO UPDATE, which locks the row until commit and, in READ COMMITTED,
judges the row's latest committed version (not the statement's snapshot). With an expected
version, the bump happens only if the room is still at it; every other write of the
statement is conditional on the claim, so a batch built on a stale head writes nothing.
Two writers of one room (two processes) thus queue on the row and the second one learns
that the room moved on, without a lock round trip of its own.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from storage.database import Database


@dataclass(frozen=True, slots=True)
class EventRow:
    """An event as stored: the PDU plus what this server learnt about it."""
    event_id: str
    room_id: str
    stream_ordering: int | None
    depth: int
    type: str
    state_key: str | None
    sender: str
    origin_server_ts: int
    pdu: dict[str, Any]
    outlier: bool
    rejected_reason: str | None
    soft_failed: bool
    state_before: int | None
    state_after: int | None
    txn_device_id: str | None
    txn_id: str | None
    redacted_by: str | None


@dataclass(frozen=True, slots=True)
class NewEvent:
    event_id: str
    room_id: str
    stream_ordering: int | None
    depth: int
    type: str
    state_key: str | None
    sender: str
    origin_server_ts: int
    received_ts: int
    pdu: dict[str, Any]
    prev_event_ids: Sequence[str]
    auth_event_ids: Sequence[str]
    outlier: bool = False
    rejected_reason: str | None = None
    soft_failed: bool = False
    state_before: int | None = None
    state_after: int | None = None
    relates_to: str | None = None
    rel_type: str | None = None
    txn_user_id: str | None = None
    txn_device_id: str | None = None
    txn_id: str | None = None
    redacts: str | None = None
    # The redaction's sender lacked the redact power (v3+ rooms): it applies to its server's events only.
    redaction_domain_check: bool = False


@dataclass(frozen=True, slots=True)
class NewStateGroup:
    id: int
    prev_group: int | None
    chain_length: int
    # The delta against prev_group, or the full state when prev_group is None.
    entries: dict[tuple[str, str], str]


@dataclass(frozen=True, slots=True)
class MembershipChange:
    event_id: str
    user_id: str
    sender: str
    membership: str
    display_name: str | None
    avatar_url: str | None
    stream_ordering: int


@dataclass(frozen=True, slots=True)
class Persisted:
    written: bool
    head: int | None  # the room's head version after the batch (None: not moved)
    txn_taken: bool  # not written: a transaction ID of the batch is already in the room


@dataclass
class PersistBatch:
    room_id: str
    events: list[NewEvent]
    state_groups: list[NewStateGroup] = field(default_factory=list)
    extremities_removed: list[str] = field(default_factory=list)
    extremities_added: list[str] = field(default_factory=list)
    # (type, state_key) -> (event_id, membership or None); replaces those current-state rows.
    current_state: dict[tuple[str, str], tuple[str, str | None]] = field(default_factory=dict)
    memberships: list[MembershipChange] = field(default_factory=list)
    # The snapshot of the room's current state after the batch (None: unchanged).
    current_state_group: int | None = None
    # The room_heads version the batch was built on: written only if the room is still at it
    # (None: written whatever the version). `moves_head`: bump the version (EventService.store
    # sets it for all but backfilled history; outliers stored on their own move no head).
    expected_head: int | None = None
    moves_head: bool = False


# Whether redaction `r` (its event `re`) applies to event `e`: accepted, in e's room, and for a
# redaction whose sender lacked the redact power (v3+), sent from e's sender's server.
REDACTION_APPLIES = """r.redacts = e.event_id AND re.rejected_reason IS NULL AND NOT re.soft_failed
    AND re.room_id = e.room_id AND (NOT r.domain_check
      OR substr(re.sender, strpos(re.sender, ':') + 1) = substr(e.sender, strpos(e.sender, ':') + 1))"""

EVENT_COLUMNS = f"""e.event_id, e.room_id, e.stream_ordering, e.depth, e.type, e.state_key, e.sender,
    e.origin_server_ts, e.pdu, e.outlier, e.rejected_reason, e.soft_failed, e.state_before,
    e.state_after, e.txn_device_id, e.txn_id,
    (SELECT r.event_id FROM redactions r JOIN events re ON re.event_id = r.event_id
      WHERE {REDACTION_APPLIES}
      ORDER BY re.stream_ordering LIMIT 1) AS redacted_by"""

# room_stats.state: (state event type, content key, field) of what the admin room list shows.
STATS_FIELDS = (
    ("m.room.name", "name", "name"), ("m.room.topic", "topic", "topic"), ("m.room.avatar", "url", "avatar"),
    ("m.room.canonical_alias", "alias", "canonical_alias"), ("m.room.join_rules", "join_rule", "join_rules"),
    ("m.room.guest_access", "guest_access", "guest_access"),
    ("m.room.history_visibility", "history_visibility", "history_visibility"),
    ("m.room.encryption", "algorithm", "encryption"), ("m.room.create", "type", "room_type"),
    ("m.room.create", "m.federate", "federatable"),
)
_STATS_VALUES = ", ".join(f"('{t}', '{k}', '{n}')" for t, k, n in STATS_FIELDS)

_PERSIST = """
WITH
-- The room's writer lock and head check (module docstring); `go` gates every write below.
-- Transaction IDs that already produced an event in the room: then nothing is written (the
-- caller answers with those events). Seen through the statement's snapshot, which holds
-- every write of the room when the claim succeeds (a later writer moved the version).
taken AS (
    SELECT 1 FROM event_txn_ids t
    JOIN unnest($48::text[], $49::text[], $50::text[]) AS q(user_id, device_id, txn_id)
      USING (user_id, device_id, txn_id)
    WHERE t.room_id = $1
),
claim AS (
    INSERT INTO room_heads (room_id, version) SELECT $1, 1 WHERE $56::bool AND NOT EXISTS (SELECT 1 FROM taken)
    ON CONFLICT (room_id) DO UPDATE SET version = room_heads.version + 1
    WHERE $55::bigint IS NULL OR room_heads.version = $55::bigint
    RETURNING version
),
go AS (
    SELECT (NOT $56::bool OR EXISTS (SELECT 1 FROM claim)) AND NOT EXISTS (SELECT 1 FROM taken) AS ok
),
new_events AS (
    INSERT INTO events (event_id, room_id, stream_ordering, depth, type, state_key, sender,
                        origin_server_ts, received_ts, pdu, outlier, rejected_reason, soft_failed,
                        state_before, state_after, relates_to, rel_type, txn_device_id, txn_id)
    SELECT * FROM unnest($2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::text[],
                         $8::text[], $9::bigint[], $10::bigint[], $11::jsonb[], $12::bool[], $13::text[],
                         $14::bool[], $15::bigint[], $16::bigint[], $17::text[], $18::text[],
                         $19::text[], $20::text[])
    WHERE (SELECT ok FROM go)
    -- An event known so far only as an outlier (auth chain, state) may join the timeline.
    ON CONFLICT (event_id) DO UPDATE SET
        stream_ordering = EXCLUDED.stream_ordering, outlier = FALSE,
        rejected_reason = EXCLUDED.rejected_reason, soft_failed = EXCLUDED.soft_failed,
        state_before = EXCLUDED.state_before, state_after = EXCLUDED.state_after
    WHERE events.outlier AND NOT EXCLUDED.outlier
    RETURNING 1
),
room_state_group AS (
    UPDATE rooms SET state_group = $53 WHERE room_id = $1 AND $53::bigint IS NOT NULL AND (SELECT ok FROM go)
),
prev_edges AS (
    INSERT INTO event_edges (event_id, prev_event_id)
    SELECT * FROM unnest($21::text[], $22::text[]) WHERE (SELECT ok FROM go) ON CONFLICT DO NOTHING
),
auth_edges AS (
    INSERT INTO event_auth_edges (event_id, auth_event_id)
    SELECT * FROM unnest($23::text[], $24::text[]) WHERE (SELECT ok FROM go) ON CONFLICT DO NOTHING
),
extremities_gone AS (
    DELETE FROM forward_extremities WHERE room_id = $1 AND event_id = ANY($25::text[]) AND (SELECT ok FROM go)
),
extremities_new AS (
    INSERT INTO forward_extremities (room_id, event_id)
    SELECT $1, x FROM unnest($26::text[]) AS x WHERE (SELECT ok FROM go) ON CONFLICT DO NOTHING
),
groups AS (
    INSERT INTO state_groups (id, room_id, prev_group, chain_length)
    SELECT g.id, $1, g.prev, g.len FROM unnest($27::bigint[], $28::bigint[], $29::int[]) AS g(id, prev, len)
    WHERE (SELECT ok FROM go)
),
group_entries AS (
    INSERT INTO state_group_entries (group_id, type, state_key, event_id)
    SELECT * FROM unnest($30::bigint[], $31::text[], $32::text[], $33::text[]) WHERE (SELECT ok FROM go)
),
current AS (
    INSERT INTO current_state (room_id, type, state_key, event_id, membership)
    SELECT $1, c.type, c.state_key, c.event_id, c.membership
    FROM unnest($34::text[], $35::text[], $36::text[], $37::text[]) AS c(type, state_key, event_id, membership)
    WHERE (SELECT ok FROM go)
    ON CONFLICT (room_id, type, state_key)
    DO UPDATE SET event_id = EXCLUDED.event_id, membership = EXCLUDED.membership
),
-- The changed current-state rows beside the ones they replace (CTEs see the state before this
-- statement), for the room_stats deltas; content only for the fields the stats keep.
changed AS (
    SELECT c.type, c.state_key, c.membership, o.membership AS old_membership, o.event_id IS NULL AS added,
           coalesce(b.pdu, e.pdu)->'content' AS content
    FROM unnest($34::text[], $35::text[], $36::text[], $37::text[]) AS c(type, state_key, event_id, membership)
    LEFT JOIN current_state o ON o.room_id = $1 AND o.type = c.type AND o.state_key = c.state_key
    LEFT JOIN unnest($2::text[], $11::jsonb[]) AS b(event_id, pdu)
           ON c.type <> 'm.room.member' AND b.event_id = c.event_id
    LEFT JOIN events e ON c.type <> 'm.room.member' AND b.event_id IS NULL AND e.event_id = c.event_id
),
stats AS (
    INSERT INTO room_stats AS s (room_id, state_events, joined_members, joined_local_members, state)
    SELECT $1, count(*) FILTER (WHERE added),
           count(*) FILTER (WHERE membership = 'join') - count(*) FILTER (WHERE old_membership = 'join'),
           count(*) FILTER (WHERE membership = 'join' AND local) - count(*) FILTER (WHERE old_membership = 'join' AND local),
           coalesce((SELECT jsonb_object_agg(f.name, ch.content->f.key) FROM changed ch
                     JOIN (VALUES {STATS_FIELDS}) AS f(type, key, name)
                       ON f.type = ch.type AND ch.state_key = ''), '{}')
    FROM (SELECT *, (membership = 'join' OR old_membership = 'join')
                    AND EXISTS (SELECT 1 FROM users u WHERE u.user_id = changed.state_key) AS local
          FROM changed WHERE type = 'm.room.member' OR added) x
    HAVING EXISTS (SELECT 1 FROM changed) AND (SELECT ok FROM go)
    ON CONFLICT (room_id) DO UPDATE SET
        state_events = s.state_events + EXCLUDED.state_events,
        joined_members = s.joined_members + EXCLUDED.joined_members,
        joined_local_members = s.joined_local_members + EXCLUDED.joined_local_members,
        state = s.state || EXCLUDED.state
),
members AS (
    INSERT INTO room_memberships (event_id, room_id, user_id, sender, membership, display_name, avatar_url, stream_ordering)
    SELECT m.event_id, $1, m.user_id, m.sender, m.membership, m.display_name, m.avatar_url, m.pos
    FROM unnest($38::text[], $39::text[], $40::text[], $41::text[], $42::text[], $43::text[], $44::bigint[])
         AS m(event_id, user_id, sender, membership, display_name, avatar_url, pos)
    WHERE (SELECT ok FROM go)
    ON CONFLICT DO NOTHING
),
redacts AS (
    INSERT INTO redactions (event_id, redacts, received_ts, domain_check)
    SELECT * FROM unnest($45::text[], $46::text[], $47::bigint[], $54::bool[]) WHERE (SELECT ok FROM go)
    ON CONFLICT DO NOTHING
),
txns AS (
    INSERT INTO event_txn_ids (user_id, device_id, txn_id, room_id, event_id, created_ts)
    SELECT t.user_id, t.device_id, t.txn_id, $1, t.event_id, t.ts
    FROM unnest($48::text[], $49::text[], $50::text[], $51::text[], $52::bigint[])
         AS t(user_id, device_id, txn_id, event_id, ts)
    WHERE (SELECT ok FROM go)
)
SELECT (SELECT ok FROM go), (SELECT version FROM claim), EXISTS (SELECT 1 FROM taken)
""".replace("{STATS_FIELDS}", _STATS_VALUES)


def _leave_out(statement: str, ctes: set[str]) -> tuple[str, list[int]]:
    """`statement` without the named CTEs, its parameters renumbered from $1; and the original
    numbers of the parameters it keeps, in their new order."""
    blocks = re.split(r"\n(?=\w+ AS \()", statement)  # a CTE's comment lines end the block before it
    kept = "\n".join(b for b in blocks if (name := re.match(r"(\w+) AS \(", b)) is None or name[1] not in ctes)
    numbers = sorted({int(n) for n in re.findall(r"\$(\d+)", kept)})
    renumber = {old: new for new, old in enumerate(numbers, 1)}
    return re.sub(r"\$(\d+)", lambda m: f"${renumber[int(m.group(1))]}", kept), numbers


# A batch of messages alone (no state, membership or redaction: most local sends) is written
# by _PERSIST without the CTEs it would pass empty arrays to: 23 fewer parameters to encode and
# a smaller plan, the same rows.
_PERSIST_MESSAGES, _MESSAGES_PARAMETERS = _leave_out(_PERSIST, {
    "room_state_group", "groups", "group_entries", "current", "changed", "stats", "members", "redacts"})


class EventStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def allocate(self, stream_positions: int, state_groups: int, *,
                       backfill: bool = False) -> tuple[list[int], list[int]]:
        """Reserve stream positions and state group IDs for a batch, in one round trip.
        Backfilled events get negative positions, each lower than the last."""
        sequence = "-nextval('events_backfill_seq')" if backfill else "nextval('events_stream_seq')"
        row = await self._db.fetchrow(
            f"""SELECT ARRAY(SELECT {sequence} FROM generate_series(1, $1)) AS positions,
                      ARRAY(SELECT nextval('state_groups_id_seq') FROM generate_series(1, $2)) AS groups""",
            stream_positions, state_groups,
        )
        return list(row["positions"]), list(row["groups"])

    async def current_stream_position(self) -> int:
        """The largest stream position handed out so far (0 when none)."""
        return await self._db.fetchval(
            "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM events_stream_seq"
        )

    async def persist(self, batch: PersistBatch) -> Persisted:
        """Write the batch, or nothing: when the room is no longer at `batch.expected_head`,
        or when one of its transaction IDs already produced an event in the room."""
        evs = batch.events
        prev_src, prev_dst, auth_src, auth_dst = [], [], [], []
        for ev in evs:
            prev_src += [ev.event_id] * len(ev.prev_event_ids)
            prev_dst += list(ev.prev_event_ids)
            auth_src += [ev.event_id] * len(ev.auth_event_ids)
            auth_dst += list(ev.auth_event_ids)
        entries = [(g.id, t, k, e) for g in batch.state_groups for (t, k), e in g.entries.items()]
        current = [(t, k, e, m) for (t, k), (e, m) in batch.current_state.items()]
        redactions = [(ev.event_id, ev.redacts, ev.received_ts, ev.redaction_domain_check) for ev in evs if ev.redacts]
        txns = [(ev.txn_user_id, ev.txn_device_id, ev.txn_id, ev.event_id, ev.received_ts)
                for ev in evs if ev.txn_id is not None]
        m = batch.memberships
        args = (
            batch.room_id,
            [e.event_id for e in evs], [e.room_id for e in evs], [e.stream_ordering for e in evs],
            [e.depth for e in evs], [e.type for e in evs], [e.state_key for e in evs],
            [e.sender for e in evs], [e.origin_server_ts for e in evs], [e.received_ts for e in evs],
            [e.pdu for e in evs], [e.outlier for e in evs], [e.rejected_reason for e in evs],
            [e.soft_failed for e in evs], [e.state_before for e in evs], [e.state_after for e in evs],
            [e.relates_to for e in evs], [e.rel_type for e in evs],
            [e.txn_device_id for e in evs], [e.txn_id for e in evs],
            prev_src, prev_dst, auth_src, auth_dst,
            batch.extremities_removed, batch.extremities_added,
            [g.id for g in batch.state_groups], [g.prev_group for g in batch.state_groups],
            [g.chain_length for g in batch.state_groups],
            [x[0] for x in entries], [x[1] for x in entries], [x[2] for x in entries], [x[3] for x in entries],
            [x[0] for x in current], [x[1] for x in current], [x[2] for x in current], [x[3] for x in current],
            [x.event_id for x in m], [x.user_id for x in m], [x.sender for x in m], [x.membership for x in m],
            [x.display_name for x in m], [x.avatar_url for x in m], [x.stream_ordering for x in m],
            [x[0] for x in redactions], [x[1] for x in redactions], [x[2] for x in redactions],
            [x[0] for x in txns], [x[1] for x in txns], [x[2] for x in txns], [x[3] for x in txns], [x[4] for x in txns],
            batch.current_state_group,
            [x[3] for x in redactions],
            batch.expected_head, batch.moves_head,
        )
        if batch.state_groups or batch.current_state or m or redactions or batch.current_state_group is not None:
            row = await self._db.fetchrow(_PERSIST, *args)
        else:
            row = await self._db.fetchrow(_PERSIST_MESSAGES, *(args[n - 1] for n in _MESSAGES_PARAMETERS))
        return Persisted(row[0], row[1], row[2])

    async def redactions_to_prune(self, older_than_ts: int, limit: int) -> list[tuple[str, str, str, dict[str, Any]]]:
        """(redaction ID, redacted event ID, room version, original PDU) past the window."""
        rows = await self._db.fetch(
            f"""SELECT r.event_id AS redaction_id, e.event_id, rm.room_version, e.pdu
               FROM redactions r
               JOIN events re ON re.event_id = r.event_id
               JOIN events e ON e.event_id = r.redacts
               JOIN rooms rm ON rm.room_id = e.room_id
               WHERE NOT r.pruned AND r.received_ts < $1 AND {REDACTION_APPLIES}
               ORDER BY r.received_ts LIMIT $2""",
            older_than_ts, limit,
        )
        return [(r["redaction_id"], r["event_id"], r["room_version"], r["pdu"]) for r in rows]

    async def replace_with_redacted(self, redaction_id: str, event_id: str, redacted_pdu: dict[str, Any]) -> None:
        """Drop an event's original content for good (its redacted form stays verifiable)."""
        await self._db.execute(
            """WITH done AS (UPDATE redactions SET pruned = TRUE WHERE event_id = $1)
               UPDATE events SET pdu = $3 WHERE event_id = $2""",
            redaction_id, event_id, redacted_pdu,
        )

    # --- reads ------------------------------------------------------------------------------

    async def get_events(self, event_ids: Sequence[str]) -> dict[str, EventRow]:
        rows = await self._db.fetch(
            f"SELECT {EVENT_COLUMNS} FROM events e WHERE e.event_id = ANY($1::text[])", list(event_ids)
        )
        return {r["event_id"]: EventRow(**r) for r in rows}

    async def get_event(self, event_id: str) -> EventRow | None:
        return (await self.get_events([event_id])).get(event_id)

    async def forward_extremities(self, room_id: str) -> list[tuple[str, int]]:
        """(event_id, depth) of the room's forward extremities."""
        rows = await self._db.fetch(
            """SELECT f.event_id, e.depth FROM forward_extremities f JOIN events e USING (event_id)
               WHERE f.room_id = $1""",
            room_id,
        )
        return [(r["event_id"], r["depth"]) for r in rows]

    async def current_state_ids(self, room_id: str) -> dict[tuple[str, str], str]:
        rows = await self._db.fetch(
            "SELECT type, state_key, event_id FROM current_state WHERE room_id = $1", room_id
        )
        return {(r["type"], r["state_key"]): r["event_id"] for r in rows}

    async def event_for_txn(self, user_id: str, device_id: str, room_id: str, txn_id: str) -> str | None:
        """The event a transaction ID already produced in a room."""
        return await self._db.fetchval(
            """SELECT event_id FROM event_txn_ids
               WHERE user_id = $1 AND device_id = $2 AND room_id = $3 AND txn_id = $4""",
            user_id, device_id, room_id, txn_id,
        )

    async def events_for_txns(self, room_id: str, txns: Sequence[tuple[str, str, str]]
                              ) -> dict[tuple[str, str, str], str]:
        """(user_id, device_id, txn_id) -> the event each transaction already produced in a room."""
        rows = await self._db.fetch(
            """SELECT t.user_id, t.device_id, t.txn_id, t.event_id FROM event_txn_ids t
               JOIN unnest($2::text[], $3::text[], $4::text[]) AS q(user_id, device_id, txn_id)
                 USING (user_id, device_id, txn_id)
               WHERE t.room_id = $1""",
            room_id, [t[0] for t in txns], [t[1] for t in txns], [t[2] for t in txns],
        )
        return {(r["user_id"], r["device_id"], r["txn_id"]): r["event_id"] for r in rows}

    async def rooms_for_user(self, user_id: str, membership: str = "join") -> list[str]:
        rows = await self._db.fetch(
            """SELECT room_id FROM current_state
               WHERE type = 'm.room.member' AND state_key = $1 AND membership = $2""",
            user_id, membership,
        )
        return [r["room_id"] for r in rows]

    async def mutual_rooms(self, user_id: str, other_id: str, after: str | None,
                           limit: int) -> tuple[list[str], int, bool]:
        """Rooms both users are joined to, by room ID: at most `limit` after `after` (from the
        first when None), how many there are in all, and whether more follow the page."""
        rows = await self._db.fetch(
            """SELECT a.room_id, count(*) OVER () AS total FROM current_state a
               JOIN current_state b ON b.room_id = a.room_id AND b.type = 'm.room.member'
                                    AND b.state_key = $2 AND b.membership = 'join'
               WHERE a.type = 'm.room.member' AND a.state_key = $1 AND a.membership = 'join'
               ORDER BY a.room_id""",
            user_id, other_id,
        )
        rooms = [r["room_id"] for r in rows]
        start = 0 if after is None else next((i for i, r in enumerate(rooms) if r > after), len(rooms))
        return rooms[start:start + limit], len(rooms), start + limit < len(rooms)

    async def joined_local_guests(self, room_id: str) -> list[str]:
        rows = await self._db.fetch(
            """SELECT c.state_key FROM current_state c JOIN users u ON u.user_id = c.state_key
               WHERE c.room_id = $1 AND c.type = 'm.room.member' AND c.membership = 'join' AND u.is_guest""",
            room_id,
        )
        return [r["state_key"] for r in rows]

    async def latest_membership(self, room_id: str, user_id: str) -> tuple[str, str, str] | None:
        """(event_id, sender, membership) of the user's newest membership event in the room,
        in or out of the room's DAG (an invite from a room we are not in)."""
        row = await self._db.fetchrow(
            """SELECT event_id, sender, membership FROM room_memberships WHERE room_id = $1 AND user_id = $2
               ORDER BY stream_ordering DESC LIMIT 1""",
            room_id, user_id,
        )
        return (row["event_id"], row["sender"], row["membership"]) if row else None

    async def members(self, room_id: str) -> dict[str, str]:
        """user_id -> membership, from the room's current state."""
        rows = await self._db.fetch(
            """SELECT state_key, membership FROM current_state WHERE room_id = $1 AND type = 'm.room.member'""",
            room_id,
        )
        return {r["state_key"]: r["membership"] for r in rows}

    # --- admin: purges --------------------------------------------------------------------------

    async def delete_extremities_but_newest(self, room_id: str) -> int:
        """Drop every forward extremity of the room but the newest; returns how many went. The
        room's head moves: a batch another process built on the old extremities is refused."""
        return await self._db.fetchval(
            """WITH gone AS (
                   DELETE FROM forward_extremities WHERE room_id = $1 AND event_id <> (
                       SELECT f.event_id FROM forward_extremities f JOIN events e USING (event_id)
                       WHERE f.room_id = $1 ORDER BY e.stream_ordering DESC NULLS LAST LIMIT 1)
                   RETURNING 1),
               head AS (UPDATE room_heads SET version = version + 1 WHERE room_id = $1)
               SELECT count(*) FROM gone""",
            room_id,
        )

    async def purge_history(self, room_id: str, before_depth: int, server_name: str,
                            delete_local_events: bool) -> list[str]:
        """Remove the room's history below `before_depth` (as Synapse's purge): non-state events
        are deleted (those sent from `server_name` only with `delete_local_events`); the state
        events and local events kept leave the timeline as outliers. Returns the deleted IDs."""
        rows = await self._db.fetch(
            """WITH doomed AS (
                   SELECT event_id, state_key IS NULL
                          AND ($3 OR substr(sender, strpos(sender, ':') + 1) <> $4) AS deleted
                   FROM events WHERE room_id = $1 AND depth < $2
               ),
               gone AS (DELETE FROM events WHERE event_id IN (SELECT event_id FROM doomed WHERE deleted)
                        RETURNING event_id),
               edges AS (DELETE FROM event_edges WHERE event_id IN (SELECT event_id FROM gone)),
               auth_edges AS (DELETE FROM event_auth_edges WHERE event_id IN (SELECT event_id FROM gone)),
               extremities AS (DELETE FROM forward_extremities
                               WHERE room_id = $1 AND event_id IN (SELECT event_id FROM gone) RETURNING 1),
               head AS (UPDATE room_heads SET version = version + 1
                        WHERE room_id = $1 AND EXISTS (SELECT 1 FROM extremities)),
               redacts AS (DELETE FROM redactions WHERE event_id IN (SELECT event_id FROM gone)),
               txns AS (DELETE FROM event_txn_ids WHERE event_id IN (SELECT event_id FROM gone)),
               hidden AS (UPDATE events SET outlier = TRUE
                          WHERE event_id IN (SELECT event_id FROM doomed WHERE NOT deleted) AND NOT outlier)
               SELECT event_id FROM gone""",
            room_id, before_depth, delete_local_events, server_name,
        )
        return [r["event_id"] for r in rows]

    async def delete_room(self, room_id: str, keep_event_ids: Sequence[str], keep_members: Sequence[str]) -> int:
        """Remove the room's events, state and snapshots, except the events in `keep_event_ids`
        (with no state snapshot any more) and the membership history of `keep_members`;
        returns how many events went."""
        return await self._db.fetchval(
            """WITH gone AS (DELETE FROM events WHERE room_id = $1 AND NOT (event_id = ANY($2::text[]))
                             RETURNING event_id),
               kept AS (UPDATE events SET state_before = NULL, state_after = NULL
                        WHERE room_id = $1 AND event_id = ANY($2::text[])),
               edges AS (DELETE FROM event_edges WHERE event_id IN (SELECT event_id FROM gone)),
               auth_edges AS (DELETE FROM event_auth_edges WHERE event_id IN (SELECT event_id FROM gone)),
               redacts AS (DELETE FROM redactions WHERE event_id IN (SELECT event_id FROM gone)),
               extremities AS (DELETE FROM forward_extremities WHERE room_id = $1),
               current AS (DELETE FROM current_state WHERE room_id = $1),
               members AS (DELETE FROM room_memberships WHERE room_id = $1 AND NOT (user_id = ANY($3::text[]))),
               txns AS (DELETE FROM event_txn_ids WHERE room_id = $1),
               entries AS (DELETE FROM state_group_entries
                           WHERE group_id IN (SELECT id FROM state_groups WHERE room_id = $1)),
               groups AS (DELETE FROM state_groups WHERE room_id = $1),
               stats AS (DELETE FROM room_stats WHERE room_id = $1),
               head AS (DELETE FROM room_heads WHERE room_id = $1)
               SELECT count(*) FROM gone""",
            room_id, list(keep_event_ids), list(keep_members),
        )

    async def state_groups_since(self, room_id: str, stream_ordering: int) -> set[int]:
        """The snapshots (before and after) of the room's timeline events from a position on."""
        rows = await self._db.fetch(
            """SELECT DISTINCT g FROM events, LATERAL (VALUES (state_before), (state_after)) AS s(g)
               WHERE room_id = $1 AND stream_ordering >= $2 AND g IS NOT NULL""", room_id, stream_ordering)
        return {r["g"] for r in rows}

    async def accepted_since(self, room_id: str, stream_ordering: int) -> list[tuple[str, str, int | None]]:
        """(event ID, sender, state before) of the room's accepted timeline events after a
        position, oldest first."""
        rows = await self._db.fetch(
            """SELECT event_id, sender, state_before FROM events
               WHERE room_id = $1 AND stream_ordering > $2 AND NOT outlier
                 AND rejected_reason IS NULL AND NOT soft_failed ORDER BY stream_ordering""",
            room_id, stream_ordering)
        return [(r["event_id"], r["sender"], r["state_before"]) for r in rows]

    async def mark_rejected(self, reasons: dict[str, str]) -> None:
        """Events found, on a second look, to fail the auth rules (a faster join's events
        once the full state is known)."""
        await self._db.execute(
            """UPDATE events e SET rejected_reason = r.reason
               FROM unnest($1::text[], $2::text[]) AS r(event_id, reason) WHERE e.event_id = r.event_id""",
            list(reasons), list(reasons.values()))

    async def replace_state_groups(self, room_id: str, stream_ordering: int, replaced: dict[int, int]) -> None:
        """Point the room's events from a position on at other snapshots (old group -> new):
        a faster join's events move from their partial state to the full one."""
        await self._db.execute(
            """UPDATE events e SET state_before = COALESCE(b.new, e.state_before),
                                   state_after = COALESCE(a.new, e.state_after)
               FROM events x
               LEFT JOIN unnest($3::bigint[], $4::bigint[]) AS b(old, new) ON b.old = x.state_before
               LEFT JOIN unnest($3::bigint[], $4::bigint[]) AS a(old, new) ON a.old = x.state_after
               WHERE e.event_id = x.event_id AND x.room_id = $1 AND x.stream_ordering >= $2
                 AND (b.new IS NOT NULL OR a.new IS NOT NULL)""",
            room_id, stream_ordering, list(replaced), list(replaced.values()))
