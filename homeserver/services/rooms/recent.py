"""The newest events of each room, in memory as they are stored: what woken /syncs read.

One new message wakes every waiting /sync of its room, and each of them reads that message
(and whether anything else moved). This keeps, per room, the newest live timeline events
(accepted, not soft-failed, not outliers) as the rows the database would return, and the
room's membership changes, filled by the event pipeline when a batch is stored (before its
positions become visible), so that a reader of (since, upto] needs no query.

What a reader may trust (otherwise it is told "unknown" and reads the database):
- a room's window holds every live event of the room above its `complete_after` position;
  a room without a window has none above `absent_after` (the start position, raised when
  windows are dropped). Only above the stream tracker's `foreign_upto` either way: another
  process's writes are announced by position, never seen here.
- a row's `redacted_by` and its bundled relation types (edit, thread, reference) are kept
  current as later redactions and relations are stored. An event made on this server cannot
  have been redacted or related to before it existed (nobody knew its ID); one received from
  another server can, so its row is checked against the database once, in the background,
  and is not served until then.
- bounded in bytes (config `caches.recent_events`, dropping the least recently written
  rooms) and in rows per room (dropping its oldest rows, which raises its `complete_after`).
Anything that deletes or rewrites stored events must call `forget(room_id)`.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from homeserver.caching import ENTRY_OVERHEAD, json_size
from homeserver.core.ids import server_name_of
from homeserver.services.streams.tracker import StreamTracker
from homeserver.stats import CacheStats
from storage.events import EventRow, EventStore, NewEvent, PersistBatch
from storage.relations import RelationQueries

logger = logging.getLogger(__name__)

# The relation types bundled into events (RelationQueries.relation_types).
BUNDLED_RELATIONS = frozenset({"m.replace", "m.thread", "m.reference"})
# Rows kept per room: a sync timeline rarely asks for more (the default limit is 10).
ROWS_PER_ROOM = 100
# An event ID in the index of where each row lives.
INDEX_BYTES = 150


def _key(row: EventRow) -> int:
    return row.stream_ordering or 0


@dataclass
class _Window:
    complete_after: int
    rows: list[EventRow] = field(default_factory=list)  # ascending stream position
    sizes: dict[str, int] = field(default_factory=dict)  # event_id -> estimated bytes
    # target event (a row) -> bundled relation types pointing at it
    relations: dict[str, set[str]] = field(default_factory=dict)
    unverified: set[str] = field(default_factory=set)  # rows of other servers, not yet checked
    # (position, user_id, membership): the room's membership rows above complete_after
    memberships: list[tuple[int, str, str]] = field(default_factory=list)
    bytes: int = 0
    # The position of the room's create event when the window holds it (the room's whole
    # timeline): no other process can have written to the room before that.
    born: int | None = None


class RecentEvents:
    def __init__(self, stream: StreamTracker, events: EventStore, relations: RelationQueries, server_name: str,
                 max_bytes: int, rows_per_room: int = ROWS_PER_ROOM) -> None:
        self._stream = stream
        self._events = events
        self._relations = relations
        self._server_name = server_name
        self._max_bytes = max_bytes
        self._rows_per_room = rows_per_room
        self._windows: OrderedDict[str, _Window] = OrderedDict()  # least recently written first
        self._where: dict[str, str] = {}  # event_id of a row -> its room
        self._absent_after = stream.current
        self._bytes = 0
        self.cache_stats = CacheStats(self._windows.__len__, lambda: self._bytes, max_bytes)

    # --- filled by the event pipeline ----------------------------------------------------------

    def stored(self, batch: PersistBatch) -> None:
        """A committed batch (EventService.on_stored): its live events join their room's
        window, its redactions and relations update the rows they point at."""
        to_verify: list[str] = []
        for event in batch.events:
            if _is_live(event) and event.event_id not in self._where:
                self._append(event)
                if server_name_of(event.sender) != self._server_name:
                    to_verify.append(event.event_id)
            if event.redacts is not None and not event.soft_failed:
                self._apply_redaction(event)
            if event.relates_to is not None and event.rel_type in BUNDLED_RELATIONS:
                self._add_relation(event.relates_to, event.rel_type)
        if batch.memberships:
            window = self._window(batch.room_id)
            window.memberships += [(m.stream_ordering, m.user_id, m.membership) for m in batch.memberships]
            window.memberships.sort()
        if to_verify:
            window = self._windows.get(batch.room_id)
            if window is not None:
                window.unverified.update(to_verify)
                # Its own context: never inside the caller's transaction.
                asyncio.get_running_loop().create_task(self._verify(batch.room_id, to_verify),
                                                       context=contextvars.Context())
        self._evict()

    def forget(self, room_id: str) -> None:
        """Trust nothing held of the room up to now (its stored events were deleted or
        rewritten): its reads go to the database until new events arrive."""
        self._drop(room_id)
        self._windows[room_id] = _Window(complete_after=max(self._stream.current, self._absent_after))

    # --- reads ---------------------------------------------------------------------------------

    def events(self, room_id: str, *, after: int, upto: int, limit: int) -> list[EventRow] | None:
        """Up to `limit` newest live events of the room in (after, upto], oldest first, as
        SyncQueries.recent_events gives them; None when memory cannot say."""
        trusted = self._trusted_after(room_id)
        window = self._windows.get(room_id)
        rows = window.rows if window is not None else []
        lo = bisect_right(rows, max(after, trusted), key=_key)
        hi = bisect_right(rows, upto, key=_key)
        if after < trusted and hi - lo < limit:
            self.cache_stats.misses += 1
            return None  # older events of the window may be missing
        picked = rows[max(lo, hi - limit):hi] if limit > 0 else []
        if window is not None and window.unverified and any(r.event_id in window.unverified for r in picked):
            self.cache_stats.misses += 1
            return None
        self.cache_stats.hits += 1
        return picked

    def rooms_with_events(self, room_ids: Iterable[str], since: int, upto: int) -> set[str] | None:
        """The rooms among `room_ids` with a live event in (since, upto]; None when memory
        cannot say for one of them."""
        found: set[str] = set()
        for room_id in room_ids:
            if since < self._trusted_after(room_id):
                self.cache_stats.misses += 1
                return None
            window = self._windows.get(room_id)
            if window is not None and bisect_right(window.rows, upto, key=_key) > \
                    bisect_right(window.rows, since, key=_key):
                found.add(room_id)
        self.cache_stats.hits += 1
        return found

    def membership_changes(self, room_ids: Iterable[str], since: int,
                           upto: int) -> list[tuple[str, str, str]] | None:
        """(room_id, user_id, membership) of the membership rows of these rooms in (since,
        upto], in stream order, as SyncQueries.membership_changes_between; None when memory
        cannot say."""
        found: list[tuple[int, str, str, str]] = []
        for room_id in room_ids:
            if since < self._trusted_after(room_id):
                self.cache_stats.misses += 1
                return None
            window = self._windows.get(room_id)
            if window is not None:
                found += [(p, room_id, u, m) for p, u, m in window.memberships if since < p <= upto]
        self.cache_stats.hits += 1
        found.sort()
        return [(room_id, user_id, membership) for _, room_id, user_id, membership in found]

    def relation_types(self, rows: Sequence[EventRow]) -> dict[str, set[str]] | None:
        """event ID -> the bundled relation types pointing at it, for rows this holds (checked);
        None when one of them is not held."""
        out: dict[str, set[str]] = {}
        for row in rows:
            room_id = self._where.get(row.event_id)
            window = self._windows.get(room_id) if room_id is not None else None
            if window is None or row.event_id in window.unverified:
                return None
            types = window.relations.get(row.event_id)
            if types:
                out[row.event_id] = set(types)
        return out

    def event(self, event_id: str) -> EventRow | None:
        """A held (checked) row by ID."""
        room_id = self._where.get(event_id)
        window = self._windows.get(room_id) if room_id is not None else None
        if window is None or event_id in window.unverified:
            return None
        index = self._index(window, event_id)
        return window.rows[index] if index is not None else None

    # --- internals -----------------------------------------------------------------------------

    def _trusted_after(self, room_id: str) -> int:
        window = self._windows.get(room_id)
        foreign = self._stream.foreign_upto
        if window is None:
            return max(self._absent_after, foreign)
        if window.born is not None and foreign < window.born:
            return window.complete_after
        return max(window.complete_after, foreign)

    def _window(self, room_id: str) -> _Window:
        window = self._windows.get(room_id)
        if window is None:
            # No window: the room had no live event above absent_after, so this one holds all.
            window = self._windows[room_id] = _Window(complete_after=self._absent_after)
        else:
            self._windows.move_to_end(room_id)
        return window

    def _append(self, event: NewEvent) -> None:
        window = self._window(event.room_id)
        row = EventRow(
            event_id=event.event_id, room_id=event.room_id, stream_ordering=event.stream_ordering, depth=event.depth,
            type=event.type, state_key=event.state_key, sender=event.sender, origin_server_ts=event.origin_server_ts,
            pdu=event.pdu, outlier=False, rejected_reason=None, soft_failed=False, state_before=event.state_before,
            state_after=event.state_after, txn_device_id=event.txn_device_id, txn_id=event.txn_id, redacted_by=None)
        if not window.rows and event.type == "m.room.create" and event.state_key == "":
            window.complete_after, window.born = 0, event.stream_ordering  # the room's whole timeline
        position = _key(row)
        if window.rows and _key(window.rows[-1]) > position:
            window.rows.insert(bisect_right(window.rows, position, key=_key), row)
        else:
            window.rows.append(row)
        size = json_size(event.pdu) + ENTRY_OVERHEAD + INDEX_BYTES
        window.sizes[event.event_id] = size
        window.bytes += size
        self._bytes += size
        self._where[event.event_id] = event.room_id
        while len(window.rows) > self._rows_per_room:
            self._drop_oldest(window)

    def _drop_oldest(self, window: _Window) -> None:
        row = window.rows.pop(0)
        window.complete_after = max(window.complete_after, _key(row))
        window.memberships = [m for m in window.memberships if m[0] > window.complete_after]
        size = window.sizes.pop(row.event_id, 0)
        window.bytes -= size
        self._bytes -= size
        window.relations.pop(row.event_id, None)
        window.unverified.discard(row.event_id)
        self._where.pop(row.event_id, None)

    def _drop(self, room_id: str) -> _Window | None:
        window = self._windows.pop(room_id, None)
        if window is None:
            return None
        self._bytes -= window.bytes
        for row in window.rows:
            self._where.pop(row.event_id, None)
        return window

    def _evict(self) -> None:
        while self._bytes > self._max_bytes and self._windows:
            room_id = next(iter(self._windows))
            window = self._drop(room_id)
            self.cache_stats.evictions += 1
            if window is not None:
                # That room may have events above absent_after now: no window means less known.
                newest = max([window.complete_after] + [_key(r) for r in window.rows[-1:]]
                             + [m[0] for m in window.memberships[-1:]])
                self._absent_after = max(self._absent_after, newest)

    @staticmethod
    def _index(window: _Window, event_id: str) -> int | None:
        for i in range(len(window.rows) - 1, -1, -1):  # recent ones are asked for most
            if window.rows[i].event_id == event_id:
                return i
        return None

    def _apply_redaction(self, redaction: NewEvent) -> None:
        """As storage's REDACTION_APPLIES: in the target's room, and from the target's server
        when the redaction's sender lacked the power to redact others' events."""
        target = redaction.redacts
        room_id = self._where.get(target) if target is not None else None
        if room_id is None or room_id != redaction.room_id:
            return
        window = self._windows[room_id]
        index = self._index(window, target)
        if index is None:
            return
        row = window.rows[index]
        if row.redacted_by is not None:
            return
        if redaction.redaction_domain_check and server_name_of(redaction.sender) != server_name_of(row.sender):
            return
        window.rows[index] = replace(row, redacted_by=redaction.event_id)

    def _add_relation(self, target: str, rel_type: str) -> None:
        room_id = self._where.get(target)
        if room_id is not None:
            self._windows[room_id].relations.setdefault(target, set()).add(rel_type)

    async def _verify(self, room_id: str, event_ids: list[str]) -> None:
        """Rows of another server's events: take their redaction and relations from the
        database (what was stored before them), then serve them."""
        try:
            stored = await self._events.get_events(event_ids)
            related = await self._relations.relation_types(event_ids)
        except Exception:  # the rows stay unverified: their readers use the database
            logger.warning("could not check recent events of %s", room_id, exc_info=True)
            return
        window = self._windows.get(room_id)
        if window is None:
            return
        for event_id in event_ids:
            index = self._index(window, event_id) if event_id in window.unverified else None
            if index is None:
                continue
            row, found = window.rows[index], stored.get(event_id)
            if found is not None and found.redacted_by is not None and row.redacted_by is None:
                window.rows[index] = replace(row, redacted_by=found.redacted_by)
            if related.get(event_id):
                window.relations.setdefault(event_id, set()).update(related[event_id])
            window.unverified.discard(event_id)


def _is_live(event: NewEvent) -> bool:
    return event.stream_ordering is not None and event.stream_ordering > 0 and not event.outlier \
        and event.rejected_reason is None and not event.soft_failed
