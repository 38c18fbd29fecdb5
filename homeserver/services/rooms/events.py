"""The event pipeline for this server's own events: build, authorise, persist, publish.

Use cases: send a message or state event into a room, and append the initial events of a
new room. Invariants:
- every event is a real PDU (hashed, signed, with prev/auth events and depth) and passes the
  room version's auth rules against the room's current state before it is stored;
- one room's events are created one at a time (a lock per room), so prev_events and state
  always follow the last persisted event;
- a batch (one event, or a whole new room) is stored by ONE SQL statement: it is all there
  or none of it is, and the cached room snapshot is swapped only after it committed.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

from homeserver.core import auth_rules
from homeserver.core.builder import EventTooLarge, auth_types_for_new_event, build_event
from homeserver.core.events import Event, InvalidEvent
from homeserver.core.room_versions import EventFormat
from homeserver.errors import Codes, MatrixError
from homeserver.services.clock import Clock
from homeserver.services.rooms.state import RoomSnapshot, RoomStateCache
from homeserver.services.streams.tracker import StreamTracker
from homeserver.stats import PersistStats
from storage.database import Database
from storage.events import EventStore, MembershipChange, NewEvent, NewStateGroup, PersistBatch

# A snapshot is stored as a delta on its parent until this many deltas have piled up; then
# as a full copy, so resolving a snapshot never reads more than this many groups.
FULL_SNAPSHOT_EVERY = 50
# prev_events of a new event: at most this many forward extremities (the deepest).
MAX_PREV_EVENTS = 10

RELATION_TYPES = ("m.annotation", "m.reference", "m.replace", "m.thread")


@dataclass(frozen=True)
class TxnRef:
    """Where a local send came from, for idempotency and unsigned.transaction_id."""
    user_id: str
    device_id: str
    txn_id: str


@dataclass
class _Pending:
    """Events built on a working copy of a room snapshot, not yet stored."""
    base: RoomSnapshot
    work: RoomSnapshot
    events: list[Event] = field(default_factory=list)


class EventService:
    def __init__(
        self, db: Database, events: EventStore, rooms: RoomStateCache, stream: StreamTracker, clock: Clock,
        server_name: str, signing_key: Any,
    ) -> None:
        self._db = db
        self._events = events
        self._rooms = rooms
        self._stream = stream
        self._clock = clock
        self.server_name = server_name
        self._signing_key = signing_key
        self._locks: dict[str, asyncio.Lock] = {}
        self._listeners: list[Callable[[list[tuple[Event, int]]], Awaitable[None] | None]] = []
        self._before_publish: list[Callable[[list[tuple[Event, int]]], Awaitable[None]]] = []
        self._stored: list[Callable[[PersistBatch], None]] = []
        # Events written and the time of each batch's writes (positions allocated to commit).
        self.persist_stats = PersistStats()

    def on_persisted(self, listener: Callable[[list[tuple[Event, int]]], Awaitable[None] | None]) -> None:
        """Call `listener` with (event, stream position) pairs after each committed batch."""
        self._listeners.append(listener)

    def before_publish(self, listener: Callable[[list[tuple[Event, int]]], Awaitable[None]]) -> None:
        """Call `listener` with (event, stream position) pairs after each committed batch but
        before its positions become visible to readers: for rows derived from the events that
        a reader must find together with them (push actions and unread counts). It must not
        raise, and it holds back the stream while it runs: keep it short."""
        self._before_publish.append(listener)

    def on_stored(self, listener: Callable[[PersistBatch], None]) -> None:
        """Call `listener` with every batch of rows written (outliers and rejected events too)
        as soon as it committed, before its positions become visible: for in-memory views of
        what was stored (sync's recent events). Synchronous: it must not block or raise."""
        self._stored.append(listener)

    def stored(self, batch: PersistBatch) -> None:
        """Tell the on_stored listeners of a committed batch (store() does; so does anyone who
        writes events through the EventStore directly)."""
        for listener in self._stored:
            listener(batch)

    def room_lock(self, room_id: str) -> asyncio.Lock:
        lock = self._locks.get(room_id)
        if lock is None:
            lock = self._locks[room_id] = asyncio.Lock()
        return lock

    # --- use cases --------------------------------------------------------------------------

    async def send(
        self, room_id: str, sender: str, event_type: str, content: dict[str, Any], *,
        state_key: str | None = None, redacts: str | None = None, txn: TxnRef | None = None,
        txn_check: Callable[[str, str, str, str], Awaitable[str | None]] | None = None,
        countersign: Callable[[Event], Awaitable[Event]] | None = None,
    ) -> Event:
        """Create, authorise and store one event in an existing room.

        With `txn_check`, a transaction that already produced an event (looked up under the
        room's lock, so concurrent retries cannot both send) returns that event instead.
        `countersign` gets the built event before it is stored and returns it with more
        signatures (an invite of another server's user carries that server's signature).
        """
        async with self.room_lock(room_id):
            snap = await self._rooms.snapshot(room_id)
            if snap is None:
                raise MatrixError(404, Codes.NOT_FOUND, "Unknown room")
            if txn is not None and txn_check is not None:
                existing = await txn_check(txn.user_id, txn.device_id, room_id, txn.txn_id)
                if existing is not None:
                    found = await self._rooms.events.get_many([existing], snap.version)
                    return found[existing]
            pending = self.begin(snap)
            event = await self.append(pending, sender, event_type, content, state_key=state_key, redacts=redacts)
            if countersign is not None:
                event = await countersign(event)
                pending.events[-1] = event
                self._rooms.events.put(event)
            await self.commit(pending, txn=txn)
        return event

    async def prepare(self, room_id: str, sender: str, event_type: str, content: dict[str, Any], *,
                      state_key: str | None = None) -> tuple[Event, RoomSnapshot]:
        """Build and authorise an event on the room's current state without storing it: the
        layout make_join, make_leave and make_knock offer to another server's user. Raises
        403 when the auth rules refuse it and 404 for an unknown room."""
        async with self.room_lock(room_id):
            snap = await self._rooms.snapshot(room_id)
            if snap is None:
                raise MatrixError(404, Codes.NOT_FOUND, "Unknown room")
            event = await self.append(self.begin(snap), sender, event_type, content, state_key=state_key)
        return event, snap

    def begin(self, snap: RoomSnapshot) -> _Pending:
        return _Pending(base=snap, work=_working_copy(snap))

    def new_room(self, room_id: str | None, version) -> _Pending:
        empty = RoomSnapshot(room_id or "", version, None, 0, {}, {})
        return _Pending(base=empty, work=_working_copy(empty))

    async def append(
        self, pending: _Pending, sender: str, event_type: str, content: dict[str, Any], *,
        state_key: str | None = None, redacts: str | None = None,
    ) -> Event:
        """Build the next event on the working snapshot and authorise it against its state."""
        work = pending.work
        version = work.version
        keys = auth_types_for_new_event(version, event_type, sender, state_key, content)
        auth_state = await self._state_events(pending, keys + [("m.room.create", "")])
        auth_ids = [auth_state[k].event_id for k in keys if k in auth_state]
        prev = sorted(work.extremities.items(), key=lambda item: -item[1])[:MAX_PREV_EVENTS]
        depth = max((d for _, d in prev), default=0) + 1
        hashes_of = None
        if version.event_format is EventFormat.V1:
            referenced = await self._rooms.events.get_many([e for e, _ in prev] + auth_ids, version)
            referenced.update({e.event_id: e for e in pending.events})
            hashes_of = {eid: ev.pdu.get("hashes", {}) for eid, ev in referenced.items()}
        try:
            event = build_event(
                version,
                room_id=work.room_id or None,
                sender=sender, event_type=event_type, content=content, state_key=state_key,
                prev_events=[e for e, _ in prev], auth_events=auth_ids, depth=depth,
                origin_server_ts=self._clock.now_ms(), server_name=self.server_name,
                signing_key=self._signing_key, redacts=redacts, hashes_of=hashes_of,
            )
        except EventTooLarge as err:
            raise MatrixError(413, Codes.TOO_LARGE, str(err)) from None
        except InvalidEvent as err:
            # Strict canonical JSON (floats, huge integers) and other content the format refuses.
            raise MatrixError(400, Codes.BAD_JSON, str(err)) from None
        if not work.room_id:
            work.room_id = event.room_id  # a v12 create event names the room
        try:
            auth_rules.check(event, auth_state)
        except auth_rules.AuthError as err:
            raise MatrixError(403, Codes.FORBIDDEN, str(err)) from None
        # Apply to the working snapshot.
        work.extremities = {e: d for e, d in work.extremities.items() if e not in event.prev_event_ids}
        work.extremities[event.event_id] = event.depth
        if event.state_key is not None:
            work.state[(event.type, event.state_key)] = event.event_id
        pending.events.append(event)
        self._rooms.events.put(event)
        return event

    async def commit(
        self, pending: _Pending, *, txn: TxnRef | None = None,
        before_persist: Callable[[], Awaitable[None]] | None = None,
    ) -> list[int]:
        """Store the pending events; returns their stream positions.

        `before_persist` runs in the same transaction, just before the events are written
        (e.g. the rooms row of a new room). Positions are published only after the commit,
        so no reader can see a position whose rows are not visible yet. Never call this
        inside an outer transaction.
        """
        events = pending.events
        if not events:
            return []
        state_count = sum(1 for e in events if e.state_key is not None)
        work = pending.work

        def build(positions: list[int], group_ids: list[int]) -> tuple[PersistBatch, list[Event]]:
            batch, final_group, chain = self._batch(pending, positions, group_ids, txn)
            work.state_group, work.chain_length = final_group, chain
            if final_group != pending.base.state_group:
                batch.current_state_group = final_group
            return batch, events

        return await self.store(build, len(events), state_count, snapshot=work, before_persist=before_persist)

    async def store(
        self, build: Callable[[list[int], list[int]], tuple[PersistBatch, list[Event]]], positions: int, groups: int,
        *, snapshot: RoomSnapshot | Callable[[], RoomSnapshot | None] | None = None,
        before_persist: Callable[[], Awaitable[None]] | None = None,
        backfill: bool = False,
    ) -> list[int]:
        """Persist one batch of a room's events and publish it: the way every event, local or
        received, reaches the database and the readers.

        `build(positions, group_ids)` gets `positions` stream positions (negative ones for
        backfilled history, which is never published) and `groups` state group IDs, and returns
        the batch with the events to publish (those with a position, in order; rejected and
        soft-failed ones left out). `snapshot` (or what it returns, once `build` ran) becomes the
        room's cached snapshot after the commit, before anyone is told of the batch. Positions become visible to readers only after the commit and the
        before_publish listeners. Never call this inside an outer transaction.
        """
        start = perf_counter()
        allocated, group_ids = await self._events.allocate(positions, groups, backfill=backfill)
        live = allocated if not backfill else []
        self._stream.start(live)
        try:
            batch, to_publish = build(allocated, group_ids)
            if before_persist is None:
                await self._events.persist(batch)  # one statement: atomic on its own
            else:
                async with self._db.transaction():
                    await before_persist()
                    await self._events.persist(batch)
        except BaseException:
            self._stream.finish(live)  # abandoned positions must not hold the stream back
            raise
        self.persist_stats.events += len(batch.events)
        self.persist_stats.latency.observe(perf_counter() - start)
        self.stored(batch)
        if callable(snapshot):
            snapshot = snapshot()
        if snapshot is not None:
            self._rooms.put(snapshot)
        position_of = {e.event_id: e.stream_ordering for e in batch.events}
        published = [(event, position_of[event.event_id]) for event in to_publish] if not backfill else []
        try:
            if published:
                for derive in self._before_publish:
                    await derive(published)
        finally:
            self._stream.finish(live)
        if published:
            for listener in self._listeners:
                result = listener(published)
                if result is not None:
                    await result
        return allocated

    # --- internals ---------------------------------------------------------------------------

    async def _state_events(self, pending: _Pending, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Event]:
        work = pending.work
        ids = {k: work.state[k] for k in dict.fromkeys(keys) if k in work.state}
        local = {e.event_id: e for e in pending.events}
        missing = [i for i in ids.values() if i not in local]
        found = await self._rooms.events.get_many(missing, work.version) if missing else {}
        found.update(local)
        return {k: found[i] for k, i in ids.items() if i in found}

    def _batch(self, pending: _Pending, positions: list[int], group_ids: list[int], txn: TxnRef | None):
        base = pending.base
        state = dict(base.state)
        group, chain = base.state_group, base.chain_length
        new_events, groups, memberships = [], [], []
        current: dict[tuple[str, str], tuple[str, str | None]] = {}
        groups_iter = iter(group_ids)
        now = self._clock.now_ms()
        for event, position in zip(pending.events, positions):
            before = group
            if event.state_key is not None:
                key = (event.type, event.state_key)
                state[key] = event.event_id
                new_group = next(groups_iter)
                if group is None or chain + 1 >= FULL_SNAPSHOT_EVERY:
                    groups.append(NewStateGroup(new_group, None, 0, dict(state)))
                    chain = 0
                else:
                    groups.append(NewStateGroup(new_group, group, chain + 1, {key: event.event_id}))
                    chain += 1
                group = new_group
                membership = event.content.get("membership") if event.type == "m.room.member" else None
                current[key] = (event.event_id, membership)
                if event.type == "m.room.member" and isinstance(membership, str):
                    memberships.append(membership_row(event, position))
            is_txn = txn is not None and event is pending.events[-1]
            new_events.append(event_row(event, position, now, before, group, txn=txn if is_txn else None))
        batch = PersistBatch(
            room_id=pending.work.room_id, events=new_events, state_groups=groups,
            extremities_removed=[e for e in base.extremities if e not in pending.work.extremities],
            extremities_added=[e for e in pending.work.extremities if e not in base.extremities],
            current_state=current, memberships=memberships,
        )
        return batch, group, chain


def _working_copy(snap: RoomSnapshot) -> RoomSnapshot:
    """A copy to build on: the maps are copied (their keys and values are immutable strings
    and tuples, so a shallow copy is a full one); the room version is shared."""
    return dataclasses.replace(snap, state=dict(snap.state), extremities=dict(snap.extremities))


def event_row(event: Event, position: int | None, now: int, before: int | None, after: int | None, *,
              rejected: str | None = None, soft_failed: bool = False, outlier: bool = False,
              txn: TxnRef | None = None, redaction_domain_check: bool = False) -> NewEvent:
    """The row an event is stored as, local or received. A rejected redaction redacts nothing;
    `redaction_domain_check`: one whose sender lacked the redact power redacts only events of
    its own server (v3+ rooms)."""
    relates_to, rel_type = relation_of(event.content)
    return NewEvent(
        event_id=event.event_id, room_id=event.room_id, stream_ordering=position, depth=event.depth,
        type=event.type, state_key=event.state_key, sender=event.sender, origin_server_ts=event.origin_server_ts,
        received_ts=now, pdu=event.pdu, prev_event_ids=event.prev_event_ids, auth_event_ids=event.auth_event_ids,
        outlier=outlier, rejected_reason=rejected, soft_failed=soft_failed, state_before=before, state_after=after,
        relates_to=relates_to, rel_type=rel_type,
        txn_user_id=txn.user_id if txn else None, txn_device_id=txn.device_id if txn else None,
        txn_id=txn.txn_id if txn else None,
        redacts=event.redacts if event.type == "m.room.redaction" and rejected is None else None,
        redaction_domain_check=redaction_domain_check,
    )


def membership_row(event: Event, position: int) -> MembershipChange:
    """The room_memberships row of an m.room.member event."""
    return MembershipChange(
        event.event_id, event.state_key or "", event.sender, event.membership or "",
        _str_or_none(event.content.get("displayname")), _str_or_none(event.content.get("avatar_url")), position,
    )


def relation_of(content: dict[str, Any]) -> tuple[str | None, str | None]:
    relates = content.get("m.relates_to")
    if isinstance(relates, dict):
        rel_type, target = relates.get("rel_type"), relates.get("event_id")
        if isinstance(rel_type, str) and isinstance(target, str):
            return target, rel_type
    return None, None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
