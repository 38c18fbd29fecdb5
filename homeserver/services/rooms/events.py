"""The event pipeline for this server's own events: build, authorise, persist, publish.

Use cases: send a message or state event into a room, and append the initial events of a
new room. Invariants:
- every event is a real PDU (hashed, signed, with prev/auth events and depth) and passes the
  room version's auth rules against the room's state before it (the state after the event
  before it in the same batch) before it is stored;
- group commit: a room's sends are queued and written in batches by one writer at a time
  (rooms/batch_writer.py, which says how, across processes too);
- a batch (one event, a group of sends, or a whole new room) is stored by ONE SQL statement:
  it is all there or none of it is, and the cached room snapshot is swapped only after it
  committed; that statement claims the room's head version (storage/events.py,
  room_heads) and writes only if the room is still at the version the batch was built on
  (else HeadMoved: nothing is written);
- a suspended account builds no event but leaving a room and redacting its own events
  (403 M_USER_SUSPENDED); a shadow-banned account's sends and invites are built and
  authorised as usual (on the room's head, under its lock), but never stored nor sent: the
  sender alone believes they happened.
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
from homeserver.core.room_versions import EventFormat, RoomVersion
from homeserver.errors import Codes, MatrixError
from homeserver.services.auth import USER_SUSPENDED, AccountRestrictions
from homeserver.services.clock import Clock
from homeserver.services.rooms.batch_writer import MAX_BATCH_EVENTS, BatchWriter, HeadMoved, TxnTaken
from homeserver.services.rooms.event_rows import local_batch
from homeserver.services.rooms.send_queue import QueuedSend, SendQueues, TxnRef
from homeserver.services.rooms.state import RoomSnapshot, RoomStateCache
from homeserver.services.streams.tracker import StreamTracker
from homeserver.stats import PersistStats
from storage.database import Database
from storage.events import EventStore, PersistBatch

# prev_events of a new event: at most this many forward extremities (the deepest).
MAX_PREV_EVENTS = 10

RELATION_TYPES = ("m.annotation", "m.reference", "m.replace", "m.thread")

@dataclass
class _Pending:
    """Events built on a working copy of a room snapshot, not yet stored."""
    base: RoomSnapshot
    work: RoomSnapshot
    events: list[Event] = field(default_factory=list)
    # event_id -> the transaction that sent it (recorded for idempotency).
    txns: dict[str, TxnRef] = field(default_factory=dict)


class EventService:
    def __init__(
        self, db: Database, events: EventStore, rooms: RoomStateCache, stream: StreamTracker, clock: Clock,
        server_name: str, signing_key: Any, *, restrictions: AccountRestrictions | None = None,
    ) -> None:
        self._restrictions = restrictions
        self._db = db
        self._events = events
        self._rooms = rooms
        self._stream = stream
        self._clock = clock
        self.server_name = server_name
        self._signing_key = signing_key
        self._locks: dict[str, asyncio.Lock] = {}
        self._queues = SendQueues(BatchWriter(self, rooms, events).write_next, max_batch=MAX_BATCH_EVENTS)
        self._listeners: list[Callable[[list[tuple[Event, int]]], Awaitable[None] | None]] = []
        self._wakers: list[Callable[[list[tuple[Event, int]]], Awaitable[None] | None]] = []
        self._before_publish: list[Callable[[list[tuple[Event, int]]], Awaitable[Awaitable[None] | None]]] = []
        # Tasks announcing positions to other processes once their derived rows are written.
        self._deriving: set[asyncio.Future[None]] = set()
        self._stored: list[Callable[[PersistBatch], None]] = []
        # Events written and the time of each batch's writes (positions allocated to commit).
        self.persist_stats = PersistStats()

    def on_persisted(self, listener: Callable[[list[tuple[Event, int]]], Awaitable[None] | None], *,
                     wakes_readers: bool = False) -> None:
        """Call `listener` with (event, stream position) pairs after each committed batch.
        Before the batch's senders are answered (what a sender does next sees its effects),
        unless it `wakes_readers`: waking thousands of /syncs need not hold the senders."""
        (self._wakers if wakes_readers else self._listeners).append(listener)

    def before_publish(self, listener: Callable[[list[tuple[Event, int]]], Awaitable[Awaitable[None] | None]]) -> None:
        """Call `listener` with (event, stream position) pairs after each committed batch,
        under the room's lock, before its positions become visible: for rows derived from the
        events (push actions and unread counts). It must not raise, and it holds back the
        room and the stream while it runs: it should only take the batch and return an
        awaitable that completes once the rows are written, then write them in the background.
        The positions become visible in this process at once (the readers of those rows wait
        for them: push/unread.py), and are announced to other processes, which read the rows
        from the database, only once every listener's awaitable has completed."""
        self._before_publish.append(listener)

    async def drain(self) -> None:
        """Wait until the rows derived from every published batch are written and announced
        (shutdown, tests)."""
        while self._deriving:
            await asyncio.gather(*list(self._deriving), return_exceptions=True)

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

    def queued(self, room_id: str) -> int:
        """How many sends into the room wait for its batch writer (not yet taken into a batch)."""
        return self._queues.queued(room_id)

    # --- use cases --------------------------------------------------------------------------

    async def send(
        self, room_id: str, sender: str, event_type: str, content: dict[str, Any], *,
        state_key: str | None = None, redacts: str | None = None, txn: TxnRef | None = None,
        txn_check: object | None = None,
        countersign: Callable[[Event], Awaitable[Event]] | None = None,
        origin_server_ts: int | None = None,
    ) -> Event:
        """Create, authorise and store one event in an existing room.

        With `txn`, a transaction that already produced an event in the room returns that
        event instead: the persist statement refuses a batch holding one (then the batch looks
        its transactions up and is rebuilt without those sends), and the same transaction
        twice in one batch yields one event, so concurrent retries cannot both send.
        `txn_check` is accepted for its callers and no longer needed: the check always runs.
        `countersign` gets the built event before it is stored and returns it with more
        signatures (an invite of another server's user carries that server's signature).
        `origin_server_ts`: the event's timestamp instead of now (an appservice's `ts`).
        """
        if await self._shadow_banned_send(sender, event_type, content):
            async with self.room_lock(room_id):  # built and authorised like any other, then dropped
                snap = await self._rooms.snapshot(room_id)
                if snap is None:
                    raise MatrixError(404, Codes.NOT_FOUND, "Unknown room")
                event = await self.append(self.begin(snap), sender, event_type, content, state_key=state_key,
                                          redacts=redacts, origin_server_ts=origin_server_ts)
            await AccountRestrictions.shadow_ban_delay()
            return event
        return await self._queues.send(room_id, QueuedSend(
            sender, event_type, content, state_key, redacts, txn, countersign, origin_server_ts))

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
        state_key: str | None = None, redacts: str | None = None, origin_server_ts: int | None = None,
    ) -> Event:
        """Build the next event on the working snapshot and authorise it against its state."""
        await self.check_not_suspended(sender, event_type, content, redacts=redacts, version=pending.work.version)
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
                origin_server_ts=origin_server_ts if origin_server_ts is not None else self._clock.now_ms(),
                server_name=self.server_name,
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
        self._remember(event)
        return event

    async def commit(
        self, pending: _Pending, *, txn: TxnRef | None = None,
        before_persist: Callable[[], Awaitable[None]] | None = None,
        after_persist: Callable[[], Awaitable[None]] | None = None,
        on_published: Callable[[], None] | None = None,
    ) -> list[int]:
        """Store the pending events; returns their stream positions. Raises HeadMoved (nothing
        stored) when the room's head is no longer the one they were built on.

        `before_persist` runs in the same transaction, just before the events are written
        (e.g. the rooms row of a new room); `after_persist` once they are committed, before
        they are published; `on_published` once they are published and the on_persisted
        listeners ran, before the listeners that wake readers (the senders' answers: they need
        not wait for thousands of /syncs to be woken). Positions are published only after the commit,
        so no reader can see a position whose rows are not visible yet. Never call this
        inside an outer transaction.
        """
        events = pending.events
        if not events:
            return []
        if txn is not None:
            pending.txns[events[-1].event_id] = txn
        state_count = sum(1 for e in events if e.state_key is not None)
        work = pending.work

        def build(positions: list[int], group_ids: list[int]) -> tuple[PersistBatch, list[Event]]:
            batch, final_group, chain = local_batch(pending.base, work, events, pending.txns, positions,
                                                    group_ids, self._clock.now_ms())
            work.state_group, work.chain_length = final_group, chain
            if final_group != pending.base.state_group:
                batch.current_state_group = final_group
                # What the batch changed: memos of the room's state update from it (SnapshotMemo).
                work.delta = (pending.base.state_group, final_group, tuple(dict.fromkeys(
                    (e.type, e.state_key) for e in events if e.state_key is not None)))
            return batch, events

        return await self.store(build, len(events), state_count, snapshot=work, before_persist=before_persist,
                                after_persist=after_persist, head=pending.base.head, on_published=on_published)

    async def store(
        self, build: Callable[[list[int], list[int]], tuple[PersistBatch, list[Event]]], positions: int, groups: int,
        *, snapshot: RoomSnapshot | Callable[[], RoomSnapshot | None] | None = None,
        before_persist: Callable[[], Awaitable[None]] | None = None,
        backfill: bool = False, head: int | None = None,
        after_persist: Callable[[], Awaitable[None]] | None = None,
        on_published: Callable[[], None] | None = None,
    ) -> list[int]:
        """Persist one batch of a room's events and publish it: the way every event, local or
        received, reaches the database and the readers.

        `build(positions, group_ids)` gets `positions` stream positions (negative ones for
        backfilled history, which is never published) and `groups` state group IDs, and returns
        the batch with the events to publish (those with a position, in order; rejected and
        soft-failed ones left out). `snapshot` (or what it returns, once `build` ran) becomes the
        room's cached snapshot after the commit, before anyone is told of the batch. Positions become visible to readers only after the commit and the
        before_publish listeners. Never call this inside an outer transaction.

        `head`: the room head version the batch was built on (local sends): it is written only
        if the room is still at it, else HeadMoved is raised and nothing is written. Without
        it (received events, built under the room's lock on what this process holds) the
        batch moves the head whatever its version; the snapshot is kept only if no other
        process wrote in between. Backfilled history leaves the head alone.
        """
        start = perf_counter()
        allocated, group_ids = await self._events.allocate(positions, groups, backfill=backfill)
        live = allocated if not backfill else []
        self._stream.start(live)
        try:
            batch, to_publish = build(allocated, group_ids)
            batch.expected_head, batch.moves_head = head, not backfill
            if before_persist is None:
                new_head = await self._persist(batch)  # one statement: atomic on its own
            else:
                async with self._db.transaction():
                    await before_persist()
                    new_head = await self._persist(batch)
        except BaseException:
            self._stream.finish(live)  # abandoned positions must not hold the stream back
            raise
        self.persist_stats.events += len(batch.events)
        self.persist_stats.latency.observe(perf_counter() - start)
        self.stored(batch)
        if after_persist is not None:
            try:
                await after_persist()
            except BaseException:
                self._stream.finish(live)
                raise
        if callable(snapshot):
            snapshot = snapshot()
        if snapshot is not None:
            self._keep_snapshot(snapshot, head, new_head)
        position_of = {e.event_id: e.stream_ordering for e in batch.events}
        published = [(event, position_of[event.event_id]) for event in to_publish] if not backfill else []
        held: list[Awaitable[None]] = []
        try:
            if published:
                for derive in self._before_publish:
                    written = await derive(published)
                    if written is not None:
                        held.append(written)
        finally:
            self._stream.finish(live, announce=not held)
            if held:
                self._announce_when_written(live, held)
        await _tell(self._listeners, published)
        if on_published is not None:
            on_published()
            # The answers first: waking readers may wake thousands of /syncs in one go.
            await asyncio.sleep(0)
        await _tell(self._wakers, published)
        return allocated

    def _announce_when_written(self, positions: list[int], held: list[Awaitable[None]]) -> None:
        async def announce() -> None:
            await asyncio.gather(*held, return_exceptions=True)
            self._stream.announce(positions)
        task = asyncio.ensure_future(announce())
        self._deriving.add(task)
        task.add_done_callback(self._deriving.discard)

    async def is_shadow_banned(self, user_id: str) -> bool:
        return self._restrictions is not None and await self._restrictions.is_shadow_banned(user_id)

    async def check_not_suspended(self, sender: str, event_type: str, content: dict[str, Any], *,
                                  redacts: str | None = None, version: RoomVersion | None = None) -> None:
        """Spec (Account suspension): a suspended account may leave rooms (and reject invites)
        and redact its own events, nothing else (as Synapse: no messages, state, joins,
        knocks, invites, bans or new rooms). Checked for every event this server builds;
        joins and knocks through another server ask before they start."""
        if self._restrictions is None or not await self._restrictions.is_suspended(sender):
            return
        if event_type == "m.room.member" and content.get("membership") == "leave":
            return
        if event_type == "m.room.redaction":
            target = redacts or content.get("redacts")
            found = await self._rooms.events.get_many([target], version) \
                if isinstance(target, str) and version is not None else {}
            if target not in found or found[target].sender == sender:
                return
            raise MatrixError(403, USER_SUSPENDED, "You can only redact your own events while suspended")
        raise MatrixError(403, USER_SUSPENDED, "You cannot perform this action while suspended")

    # --- internals ---------------------------------------------------------------------------

    async def _persist(self, batch: PersistBatch) -> int | None:
        result = await self._events.persist(batch)
        if result.txn_taken:
            raise TxnTaken(batch.room_id)
        if not result.written:
            raise HeadMoved(batch.room_id)  # inside before_persist's transaction: rolls it back
        return result.head

    def _keep_snapshot(self, snapshot: RoomSnapshot, head: int | None, new_head: int | None) -> None:
        """Cache the snapshot a committed batch left the room in, at its head version, when it
        is known to be the whole head; else drop it (the next reader loads the room)."""
        cached = self._rooms.cached(snapshot.room_id)
        if new_head is None:  # backfill: the head did not move
            new_head = cached.head if cached is not None else None
        elif head is None:  # written unchecked: whole only if no other process wrote since ours
            base = cached.head if cached is not None else 0
            new_head = new_head if new_head == base + 1 else None
        if new_head is None:
            self._rooms.forget(snapshot.room_id)
            return
        snapshot.head = new_head
        self._rooms.put(snapshot)

    async def build_queued(self, pending: _Pending, request: QueuedSend) -> Event:
        """Build a queued send on `pending` (the batch writer's call)."""
        if request.countersign is None:
            return await self.append(pending, request.sender, request.event_type, request.content,
                                     state_key=request.state_key, redacts=request.redacts,
                                     origin_server_ts=request.origin_server_ts)
        saved = _working_copy(pending.work)
        event = await self.append(pending, request.sender, request.event_type, request.content,
                                  state_key=request.state_key, redacts=request.redacts,
                                  origin_server_ts=request.origin_server_ts)
        try:
            event = await request.countersign(event)
        except BaseException:
            pending.events.pop()  # as if never built: the next event follows the previous one
            pending.work = saved
            raise
        pending.events[-1] = event
        self._remember(event)
        return event

    def _remember(self, event: Event) -> None:
        """Keep a new event parsed in memory when it will be read again soon: a state event
        (auth checks, push rules, joins read them), or any event of a room whose events
        carry their prev_events' hashes (versions 1 and 2). Messages of the other rooms are
        not: what reads them (sync) has the recent events, and they are most of a room."""
        if event.state_key is not None or event.room_version.event_format is EventFormat.V1:
            self._rooms.events.put(event)

    async def _shadow_banned_send(self, sender: str, event_type: str, content: dict[str, Any]) -> bool:
        """Whether this event of a shadow-banned sender must reach nobody: anything but their
        own membership changes (joining and leaving work as usual; invites do not), as Synapse."""
        if not await self.is_shadow_banned(sender):
            return False
        return event_type != "m.room.member" or content.get("membership") == "invite"

    async def _state_events(self, pending: _Pending, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Event]:
        work = pending.work
        ids = {k: work.state[k] for k in dict.fromkeys(keys) if k in work.state}
        local = {e.event_id: e for e in pending.events}
        missing = [i for i in ids.values() if i not in local]
        found = await self._rooms.events.get_many(missing, work.version) if missing else {}
        found.update(local)
        return {k: found[i] for k, i in ids.items() if i in found}


def _working_copy(snap: RoomSnapshot) -> RoomSnapshot:
    """A copy to build on: the maps are copied (their keys and values are immutable strings
    and tuples, so a shallow copy is a full one); the room version is shared."""
    return dataclasses.replace(snap, state=dict(snap.state), extremities=dict(snap.extremities))


async def _tell(listeners: list[Callable[[list[tuple[Event, int]]], Awaitable[None] | None]],
                published: list[tuple[Event, int]]) -> None:
    """Each on_persisted listener in turn, with the batch's published events (none: no call)."""
    if not published:
        return
    for listener in listeners:
        result = listener(published)
        if result is not None:
            await result
