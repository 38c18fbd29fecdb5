"""Events as clients see them: client format, redactions applied, bundled aggregations,
and the history visibility that decides who sees what.

The events of erased users (deactivated with `erase`) are served redacted to whoever was not
joined to the room when they were sent, as Synapse does (synapse/visibility.py): their
messages, and their own member events (the profile they carried); the room state they set
(name, topic...) stays as it is, as in Synapse's state sections.

Bundled aggregations (spec: "Aggregations of child events"): `unsigned.m.relations` carries
the newest edit (m.replace, by the original sender; the whole replacement event), the thread
summary (m.thread: latest_event, count, current_user_participated) and references
(m.reference). Annotations are not bundled (the spec leaves them to the client).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from homeserver.core.redaction import redact
from homeserver.core.room_versions import RoomVersion
from homeserver.core.visibility import VisibilityTimeline
from homeserver.services.auth import Requester
from homeserver.services.clock import Clock
from homeserver.services.rooms.erasure import ErasedUsers
from homeserver.services.rooms.recent import RecentEvents
from storage.events import EventRow, EventStore
from storage.timeline import TimelineQueries
from storage.relations import RelationQueries


class EventFormatter:
    def __init__(self, events: EventStore, queries: TimelineQueries, relations: RelationQueries, clock: Clock,
                 erased: ErasedUsers, recent: RecentEvents | None = None) -> None:
        self._erased = erased
        self._events = events
        self._queries = queries
        self._relations = relations
        self._clock = clock
        # Recent events in memory: their redactions and relations need no query.
        self._recent = recent

    # --- visibility -------------------------------------------------------------------------------

    async def visibility(self, room_id: str, user_id: str) -> VisibilityTimeline:
        changes = await self._queries.state_changes(room_id, "m.room.history_visibility")
        memberships = await self._queries.memberships_of(room_id, user_id)
        return self.visibility_from(changes, [(m.stream_ordering, m.membership) for m in memberships])

    @staticmethod
    def visibility_from(changes: Sequence[tuple[int, Any]], memberships: Sequence[tuple[int, str]]) -> VisibilityTimeline:
        """From the room's history_visibility changes, (position, content), and the user's
        membership changes, (position, membership), each oldest first."""
        return VisibilityTimeline(
            [(pos, c.get("history_visibility") if isinstance(c, dict) else None) for pos, c in changes],
            memberships,
        )

    @staticmethod
    def visible(rows: list[EventRow], timeline: VisibilityTimeline, user_id: str) -> list[EventRow]:
        return [r for r in rows if r.stream_ordering is not None and timeline.can_see(
            r.stream_ordering,
            is_visibility_event=r.type == "m.room.history_visibility",
            is_own_membership=r.type == "m.room.member" and r.state_key == user_id,
        )]

    async def erased_for(self, rows: list[EventRow], requester: Requester | None,
                         visibility: VisibilityTimeline | None = None) -> set[str]:
        """The IDs of `rows` to serve redacted to the requester because their sender is erased
        and the requester was not joined when they were sent. One query for the senders (none
        when their answers are cached); the requester's memberships are read only when an
        erased sender turns up (`visibility`, when the caller has it for the room, saves that)."""
        viewer = requester.user_id if requester is not None else None
        senders = {r.sender for r in rows if r.sender != viewer}
        erased = await self._erased.among(senders) if senders else set()
        if not erased:
            return set()
        hidden: set[str] = set()
        timelines: dict[str, VisibilityTimeline] = {}
        if visibility is not None and len({r.room_id for r in rows}) == 1:
            timelines[rows[0].room_id] = visibility
        for row in rows:
            if row.sender not in erased or (row.state_key is not None and not (
                    row.type == "m.room.member" and row.state_key == row.sender)):
                continue
            if viewer is not None and row.stream_ordering is not None:
                timeline = timelines.get(row.room_id)
                if timeline is None:
                    timeline = timelines[row.room_id] = await self.visibility(row.room_id, viewer)
                if timeline.joined_at(row.stream_ordering):
                    continue
            hidden.add(row.event_id)
        return hidden

    # --- formatting ---------------------------------------------------------------------------------

    async def format_events(self, rows: list[EventRow], version: RoomVersion, requester: Requester | None,
                            *, bundle: bool = True, visibility: VisibilityTimeline | None = None,
                            erasure: bool = True) -> list[dict[str, Any]]:
        """`visibility`: the requester's, when the caller has it for the rows' one room.
        `erasure` false: a server admin reads erased users' events as they were (Synapse's
        admin /messages and /context)."""
        redaction_ids = [r.redacted_by for r in rows if r.redacted_by]
        redactions: dict[str, EventRow] = {}
        if redaction_ids and self._recent is not None:
            redactions = {i: found for i in redaction_ids if (found := self._recent.event(i)) is not None}
        missing = [i for i in redaction_ids if i not in redactions]
        if missing:
            redactions.update(await self._events.get_events(missing))
        erased = await self.erased_for(rows, requester, visibility) if rows and erasure else set()
        now = self._clock.now_ms()
        out = [self._format(row, version, requester, now, redactions.get(row.redacted_by) if row.redacted_by else None,
                            erased=row.event_id in erased)
               for row in rows]
        if bundle and rows:
            await self._bundle(rows, out, version, requester, erased)
        return out

    def _format(self, row: EventRow, version: RoomVersion, requester: Requester | None, now: int,
                redacted_because: EventRow | None, *, erased: bool = False) -> dict[str, Any]:
        pdu = redact(row.pdu, version) if redacted_because is not None or erased else row.pdu
        event: dict[str, Any] = {
            "event_id": row.event_id,
            "room_id": row.room_id,
            "type": pdu["type"],
            "sender": pdu["sender"],
            "content": pdu.get("content", {}),
            "origin_server_ts": pdu["origin_server_ts"],
        }
        if row.state_key is not None:
            event["state_key"] = row.state_key
        if row.type == "m.room.redaction" and "redacts" in pdu:
            event["redacts"] = pdu["redacts"]
        unsigned: dict[str, Any] = {"age": max(0, now - row.origin_server_ts)}
        if (requester is not None and row.txn_id is not None and row.sender == requester.user_id
                and row.txn_device_id == (requester.device_id or "")):
            unsigned["transaction_id"] = row.txn_id
        if redacted_because is not None:
            unsigned["redacted_because"] = self._format(redacted_because, version, None, now, None)
            # Not in the spec, but long given by Synapse and read by clients and sytest.
            unsigned["redacted_by"] = redacted_because.event_id
        event["unsigned"] = unsigned
        return event

    async def _bundle(self, rows: list[EventRow], out: list[dict[str, Any]], version: RoomVersion,
                      requester: Requester | None, erased: set[str]) -> None:
        live = [r for r in rows if not r.redacted_by and r.event_id not in erased]
        if not live:
            return
        ids = [r.event_id for r in live]
        related = self._recent.relation_types(live) if self._recent is not None else None
        if related is None:
            related = await self._relations.relation_types(ids)
        if not related:
            return
        edited = {e for e, types in related.items() if "m.replace" in types}
        threaded = [e for e, types in related.items() if "m.thread" in types]
        referenced = [e for e, types in related.items() if "m.reference" in types]
        edits = await self._relations.latest_edits(
            [(r.event_id, r.sender) for r in live if r.state_key is None and r.event_id in edited])
        threads = await self._relations.thread_summaries(threaded, requester.user_id if requester else "")
        references = await self._relations.references(referenced)
        if not (edits or threads or references):
            return
        extra_ids = list(edits.values()) + [t.latest_event_id for t in threads.values()]
        extra_rows = await self._events.get_events(extra_ids) if extra_ids else {}
        extra = {
            eid: formatted for eid, formatted in zip(
                extra_rows, await self.format_events(list(extra_rows.values()), version, requester, bundle=False))
        }
        by_id = {event["event_id"]: event for event in out}
        for event_id in ids:
            relations: dict[str, Any] = {}
            if event_id in edits and edits[event_id] in extra:
                relations["m.replace"] = extra[edits[event_id]]
            if event_id in threads:
                summary = threads[event_id]
                thread: dict[str, Any] = {"count": summary.count, "current_user_participated": summary.participated}
                if summary.latest_event_id in extra:
                    thread["latest_event"] = extra[summary.latest_event_id]
                root_sender = by_id[event_id]["sender"]
                if requester is not None and root_sender == requester.user_id:
                    thread["current_user_participated"] = True
                relations["m.thread"] = thread
            if event_id in references:
                relations["m.reference"] = {"chunk": [{"event_id": e} for e in references[event_id]]}
            if relations:
                by_id[event_id]["unsigned"]["m.relations"] = relations
