"""Storing events received from other servers: the second stage of "Federation in".

Use case: a PDU that passed checks 1-3 (`PduChecker`) enters a room here, whether it came in
a PUT /send transaction, a get_missing_events or backfill answer, or as the join event of a
send_join. The pipeline (https://spec.matrix.org/v1.19/server-server-api/#checks-performed-on-receipt-of-a-pdu):

1. prev events we lack are fetched with get_missing_events (from the sending server); an
   event whose own prev events are still missing then is refused; where a gap remains before
   the events fetched, the state after the missing prev event is fetched with /state_ids;
2. auth events we lack are fetched with /event_auth and stored as outliers, each checked
   against its own auth events (rejected ones are stored rejected);
3. the state before the event is the resolution of the states after its prev events;
4. check 4 (its auth events), check 5 (the state before it: else rejected), check 6 (the
   room's current state: else soft-failed);
5. the event is stored with its snapshots; an accepted event becomes a forward extremity and
   the room's current state becomes the resolution of the old one and the state after it.

Invariants: the caller holds the room's lock (EventService.room_lock), so each room's events
are processed one at a time and local sends see a consistent snapshot; a rejected or
soft-failed event is stored but never published to clients; everything a batch writes is
one statement (EventService.store).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from federation.client import FederationClient, FederationError, path
from homeserver.core.builder import auth_types_for_new_event
from homeserver.core import power_levels
from homeserver.core.events import Event
from homeserver.core.ids import server_name_of
from homeserver.core.pdu_checks import check_against_auth_events, check_against_state, create_event_id_of
from homeserver.core.room_versions import RoomVersion
from homeserver.services.clock import Clock
from homeserver.services.federation.pdu_checks import CheckedPdu, PduChecker, PduDropped
from homeserver.services.federation.remote_state import RemoteState, StateIds, plan_group
from homeserver.services.rooms.event_rows import event_row, membership_row
from homeserver.services.rooms.events import EventService
from homeserver.services.rooms.state import RoomSnapshot, RoomStateCache
from storage.event_graph import EventGraphQueries
from storage.events import EventStore, NewEvent, NewStateGroup, PersistBatch

logger = logging.getLogger(__name__)

# get_missing_events asks for at most this many events (Synapse asks for 10).
MISSING_EVENTS_LIMIT = 10
# /backfill asks for this many events (as Synapse; the most a server answers).
BACKFILL_LIMIT = 100
# More missing state events than this: fetch the whole state with /state instead of one by one.
FETCH_ONE_BY_ONE_UP_TO = 20
FETCH_CONCURRENCY = 10


class IntakeError(Exception):
    """A received event could not be processed (an answer for the sending server)."""


@dataclass(frozen=True)
class Outcome:
    event_id: str
    stored: bool
    rejected: str | None = None
    soft_failed: bool = False


class FederationIntake:
    def __init__(self, events: EventService, rooms: RoomStateCache, event_store: EventStore,
                 graph: EventGraphQueries, remote_state: RemoteState, checker: PduChecker,
                 joined_servers: Callable[[str], Awaitable[set[str]]], client: FederationClient, clock: Clock,
                 server_name: str, *, is_partial: Callable[[str], Awaitable[bool]] | None = None) -> None:
        self._is_partial = is_partial
        self._server_name = server_name
        self._joined_servers = joined_servers
        self._events = events
        self._rooms = rooms
        self._store = event_store
        self._graph = graph
        self._state = remote_state
        self._checker = checker
        self._client = client
        self._clock = clock

    # --- received live events -----------------------------------------------------------------

    async def process(self, origin: str, event: Event, *, fetch_missing: bool = True) -> Outcome:
        """Process one checked event of a room we are in. The caller holds the room's lock."""
        known = await self._graph.known([event.event_id])
        if event.event_id in known and not known[event.event_id][0]:
            return Outcome(event.event_id, stored=False)
        snap = await self._snapshot(event.room_id)
        if fetch_missing and await self._missing_prevs(event):
            await self._fetch_missing_prevs(origin, snap, event)
            snap = await self._snapshot(event.room_id)
            if still_missing := await self._missing_prevs(event):
                # Its server would not give us the events it builds on: refused, not stored (as
                # Synapse). Asking it for the state there instead would let it choose the state
                # a pushed event sits on; only events we pulled bridge a gap with /state_ids.
                raise IntakeError(f"{origin} did not divulge the prev events {sorted(still_missing)}")
        return await self._process_one(origin, snap, event)

    async def _process_one(self, origin: str, snap: RoomSnapshot, event: Event, *, backfill: bool = False) -> Outcome:
        version = snap.version
        prev_known = await self._graph.known(event.prev_event_ids)
        state_sets: list[StateIds] = []
        parent: tuple[int, StateIds] | None = None
        for prev in event.prev_event_ids:
            info = prev_known.get(prev)
            if info is not None and not info[0] and info[2] is not None:
                # The common case, an event on top of the room's head: its state is in memory.
                state = dict(snap.state) if info[2] == snap.state_group else await self._state.state_of_group(info[2])
                parent = parent or (info[2], state)
                state_sets.append(state)
            else:
                state_sets.append(await self._state_after_remote(origin, snap, prev))
        if state_sets:
            before = await self._state.resolve(snap.room_id, version, state_sets)
        elif backfill and event.type == "m.room.create" and event.state_key == "":
            before = {}  # history reaching the room's start: nothing is before the create event
        else:
            raise IntakeError("an event other than the create event must have prev events")
        await self._ensure_auth_events(origin, snap, event)
        # Soft failure (check 6) applies to live events whose state is not the room's own.
        current = snap.state if not backfill and dict(snap.state) != dict(before) else None
        partial = self._is_partial is not None and await self._is_partial(snap.room_id)
        verdict = await self.check(version, event, before, current, partial=partial)
        soft_failed, domain_check = verdict.soft_failed, False
        if verdict.accepted and event.type == "m.room.redaction" and not version.auth.redaction_sender_domain_check:
            withheld, domain_check = await self._redaction_check(version, event, before)
            if withheld:
                logger.info("redaction %s from %s withheld: %s", event.event_id, origin, withheld)
                soft_failed = True
        await self._persist_live(snap, event, before, parent, verdict.reason if verdict.rejected else None,
                                 soft_failed, backfill=backfill, redaction_domain_check=domain_check)
        if not verdict.accepted:
            logger.info("event %s from %s %s: %s", event.event_id, origin, verdict.outcome.value, verdict.reason)
        return Outcome(event.event_id, True, verdict.reason if verdict.rejected else None, soft_failed)

    async def _redaction_check(self, version: RoomVersion, event: Event, before: StateIds) -> tuple[str | None, bool]:
        """Room versions 3+ leave redactions out of the auth rules; the spec ("Redactions") has
        a server apply one only to an event of its room, sent from the redaction sender's server
        unless that sender holds the redact power level. Returns (why the redaction is withheld
        from clients and applies to nothing, or None; whether it needs the same-server check
        when its target turns up later)."""
        keys = [("m.room.create", ""), ("m.room.power_levels", "")]
        state = await self._state_events(version, before, keys)
        privileged = power_levels.user_power_level(event.sender, state) >= power_levels.redact_level(state)
        # The stored row, not a parsed event: the target may be of another room and room version.
        target = await self._store.get_event(event.redacts) if event.redacts else None
        if target is None:
            return None, not privileged  # decided when the target is read
        if target.room_id != event.room_id:
            return "it redacts an event of another room", False
        if not privileged and server_name_of(target.sender) != server_name_of(event.sender):
            return "its sender may not redact events of other servers", False
        return None, not privileged

    async def check(self, version: RoomVersion, event: Event, before: StateIds,
                    current: StateIds | None = None, *, partial: bool = False):
        """Checks 4 and 5 (its auth events, then the state before it) and, given the room's
        current state when that differs, check 6. Also for a join whose state before it we
        were handed (a send_join answer).

        `partial`: the room's state is partial (a faster join whose full state is not in yet),
        so the states lack most members. As Synapse, the event's own auth events stand in for
        what they lack (what is known, a ban say, still wins), and nothing is soft-failed."""
        wanted = list(event.auth_event_ids)
        if (create_id := create_event_id_of(event)) is not None:
            wanted.append(create_id)
        auth_events = await self._rooms.events.get_many(wanted, version)
        verdict = check_against_auth_events(event, auth_events, await self._graph.rejected_among(wanted))
        if not verdict.accepted:
            return verdict
        if partial:
            claimed = {(e.type, e.state_key): e.event_id for e in auth_events.values() if e.state_key is not None}
            before = {**claimed, **before}
            current = None  # no soft failure while partial (as Synapse): the current members are not known
        keys = auth_types_for_new_event(version, event.type, event.sender, event.state_key, event.content)
        keys = list(dict.fromkeys(keys + [("m.room.create", "")]))
        before_events = await self._state_events(version, before, keys)
        current_events = await self._state_events(version, current, keys) if current is not None else None
        return check_against_state(event, before_events, current_events)

    async def _state_events(self, version: RoomVersion, state: Mapping[tuple[str, str], str],
                            keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Event]:
        ids = {k: state[k] for k in keys if k in state}
        found = await self._rooms.events.get_many(ids.values(), version)
        return {k: found[i] for k, i in ids.items() if i in found}

    async def _persist_live(self, snap: RoomSnapshot, event: Event, before: StateIds,
                            parent: tuple[int, StateIds] | None, rejected: str | None, soft_failed: bool, *,
                            backfill: bool = False, redaction_domain_check: bool = False) -> None:
        """Store a timeline event with its snapshots, and move the room's extremities and
        current state on when it is accepted (backfilled history moves neither)."""
        version = snap.version
        accepted = rejected is None and not soft_failed
        moves_room = accepted and not backfill
        after = dict(before)
        if event.state_key is not None and rejected is None:
            after[(event.type, event.state_key)] = event.event_id
        extremities = dict(snap.extremities)
        current = dict(snap.state)
        if moves_room:
            for prev in event.prev_event_ids:
                extremities.pop(prev, None)
            covered = set(snap.extremities) <= set(event.prev_event_ids)
            extremities[event.event_id] = event.depth
            current = after if covered else await self._state.resolve(
                snap.room_id, version, [snap.state, after], {event.event_id: event})
        parent_chain = 0
        if parent is not None:
            parent_chain = snap.chain_length if parent[0] == snap.state_group else await self._state.chain_length(parent[0])
        current_chain_base = snap.chain_length
        changed = {k: v for k, v in current.items() if snap.state.get(k) != v}
        removed = [k for k in snap.state if k not in current]
        if removed:
            logger.warning("state resolution in %s dropped %s; current_state keeps them", snap.room_id, removed)
        members = await self._rooms.events.get_many(
            [v for (t, _), v in changed.items() if t == "m.room.member" and v != event.event_id], version)
        members[event.event_id] = event

        new_groups = 0
        reuse_before = parent is not None and dict(parent[1]) == before
        new_groups += 0 if reuse_before else 1
        state_changes = after != before
        new_groups += 1 if state_changes else 0
        current_is_new = moves_room and current != after and current != snap.state
        new_groups += 1 if current_is_new else 0
        new_snapshot: RoomSnapshot | None = None

        def build(positions: list[int], group_ids: list[int]) -> tuple[PersistBatch, list[Event]]:
            nonlocal new_snapshot
            ids = iter(group_ids)
            groups: list[NewStateGroup] = []
            if reuse_before:
                before_group, before_chain = parent[0], parent_chain
            else:
                group, before_chain = plan_group(next(ids), before, *(parent or (None, None)), parent_chain)
                groups.append(group)
                before_group = group.id
            after_group, after_chain = before_group, before_chain
            if state_changes:
                group, after_chain = plan_group(next(ids), after, before_group, before, before_chain)
                groups.append(group)
                after_group = group.id
            current_group, chain = snap.state_group, snap.chain_length
            if moves_room and current == after:
                current_group, chain = after_group, after_chain
            elif current_is_new:
                group, chain = plan_group(next(ids), current, snap.state_group, snap.state, current_chain_base)
                groups.append(group)
                current_group = group.id
            position = positions[0]
            membership_rows = []
            if accepted and event.type == "m.room.member" and event.membership is not None:
                membership_rows.append(membership_row(event, position))
            batch = PersistBatch(
                room_id=snap.room_id,
                events=[event_row(event, position, self._clock.now_ms(), before_group, after_group,
                                   rejected=rejected, soft_failed=soft_failed,
                                   redaction_domain_check=redaction_domain_check)],
                state_groups=groups,
                extremities_removed=[e for e in snap.extremities if e not in extremities],
                extremities_added=[e for e in extremities if e not in snap.extremities],
                current_state={k: (v, members[v].membership if k[0] == "m.room.member" and v in members else None)
                               for k, v in changed.items()},
                memberships=membership_rows,
                current_state_group=current_group if current_group != snap.state_group else None,
            )
            new_snapshot = RoomSnapshot(snap.room_id, version, current_group, chain, current, extremities)
            return batch, [event] if accepted else []

        self._rooms.events.put(event)
        await self._events.store(build, 1, new_groups, snapshot=lambda: new_snapshot, backfill=backfill)

    # --- history ----------------------------------------------------------------------------

    async def backfill(self, room_id: str, limit: int = BACKFILL_LIMIT) -> int:
        """Fetch history older than what we hold from a server in the room (/backfill), for
        /messages. Returns how many events were stored. Failures leave history as it is.

        Asks for BACKFILL_LIMIT events whatever the page size (as Synapse): a batch that
        reaches further back needs the state at its oldest event's prev events only once.
        Events we hold as outliers (the state and auth chain a join brought) join the
        timeline here, in depth order, so a message on top of them needs no /state_ids."""
        limit = max(limit, BACKFILL_LIMIT)
        snap = await self._rooms.snapshot(room_id)
        if snap is None:
            return 0
        extremities = await self._graph.backward_extremities(room_id)
        if not extremities:
            return 0
        servers = sorted(await self._joined_servers(room_id) - {self._server_name})
        for server in servers:
            try:
                body = await self._client.get_json(
                    server, path("/_matrix/federation/v1/backfill/{}", room_id),
                    query={"v": [e for e, _ in extremities], "limit": str(min(limit, 100))})
            except FederationError as err:
                logger.info("backfill of %s from %s failed: %s", room_id, server, err)
                continue
            pdus = body.get("pdus") if isinstance(body, dict) else None
            if not isinstance(pdus, list):
                continue
            checked = await self._checker.check_pdus(pdus[:limit * 2], snap.version, server, expected_room_id=room_id)
            found = sorted((c.event for c in checked if isinstance(c, CheckedPdu)), key=lambda e: e.depth)
            stored = 0
            async with self._events.room_lock(room_id):
                for event in found:
                    known = await self._graph.known([event.event_id])
                    if event.event_id in known and not known[event.event_id][0]:
                        continue
                    try:
                        await self._process_one(server, await self._snapshot(room_id), event, backfill=True)
                        stored += 1
                    except IntakeError as err:
                        logger.info("backfilled %s from %s not stored: %s", event.event_id, server, err)
            return stored
        return 0

    # --- fetching what we lack ----------------------------------------------------------------

    async def _missing_prevs(self, event: Event) -> list[str]:
        known = await self._graph.known(event.prev_event_ids)
        return [p for p in event.prev_event_ids if p not in known or known[p][0]]

    async def _fetch_missing_prevs(self, origin: str, snap: RoomSnapshot, event: Event) -> None:
        """get_missing_events between our forward extremities and the event; each event found
        is processed, oldest first (a gap before the oldest is bridged by /state_ids)."""
        min_depth = min(snap.extremities.values(), default=0)
        try:
            body = await self._client.post_json(
                origin, path("/_matrix/federation/v1/get_missing_events/{}", snap.room_id),
                {"earliest_events": list(snap.extremities), "latest_events": [event.event_id],
                 "limit": MISSING_EVENTS_LIMIT, "min_depth": min_depth})
        except FederationError as err:
            logger.info("get_missing_events for %s from %s failed: %s", event.event_id, origin, err)
            return
        pdus = body.get("events") if isinstance(body, dict) else None
        if not isinstance(pdus, list):
            return
        checked = await self._checker.check_pdus(pdus[:MISSING_EVENTS_LIMIT * 2], snap.version, origin,
                                                 expected_room_id=snap.room_id)
        found = sorted((c.event for c in checked if isinstance(c, CheckedPdu)), key=lambda e: e.depth)
        for missing in found:
            if missing.event_id == event.event_id:
                continue
            known = await self._graph.known([missing.event_id])
            if missing.event_id in known and not known[missing.event_id][0]:
                continue
            await self._process_one(origin, await self._snapshot(snap.room_id), missing)

    async def state_after(self, origin: str, room_id: str, event_id: str) -> StateIds:
        """The state after `event_id` as `origin` tells it (/state_ids, then /state or /event
        for what we lack, stored as outliers): how a faster join's resync learns the full state."""
        return await self._state_after_remote(origin, await self._snapshot(room_id), event_id)

    async def _state_after_remote(self, origin: str, snap: RoomSnapshot, prev_id: str) -> StateIds:
        """The state after an event we do not hold: the state before it (/state_ids), plus the
        event itself when it is a state event. What we lack is fetched and stored as outliers."""
        try:
            body = await self._client.get_json(origin, path("/_matrix/federation/v1/state_ids/{}", snap.room_id),
                                               query={"event_id": prev_id})
        except FederationError as err:
            raise IntakeError(f"could not fetch the state at {prev_id} from {origin}: {err}") from None
        pdu_ids = body.get("pdu_ids") if isinstance(body, dict) else None
        chain_ids = body.get("auth_chain_ids") if isinstance(body, dict) else None
        if not _str_list(pdu_ids) or not _str_list(chain_ids):
            raise IntakeError(f"{origin} sent a malformed state_ids answer")
        wanted = list(dict.fromkeys([*chain_ids, *pdu_ids, prev_id]))
        known = await self._graph.known(wanted)
        missing = [e for e in wanted if e not in known]
        if len(missing) > FETCH_ONE_BY_ONE_UP_TO:
            events = await self._fetch_state(origin, snap, prev_id)
            events += await self._fetch_events(origin, snap, [prev_id])
        else:
            events = await self._fetch_events(origin, snap, missing)
        await self.store_outliers(snap.room_id, snap.version, events)
        stored = await self._rooms.events.get_many(pdu_ids + [prev_id], snap.version)
        # A state event that fails against its own auth events is no part of any state (say a
        # made-up power levels event a peer claims): leaving it out keeps it from state resolution.
        rejected = await self._graph.rejected_among(pdu_ids + [prev_id])
        state = {}
        for event_id in pdu_ids:
            event = stored.get(event_id)
            if event is None or event.state_key is None:
                raise IntakeError(f"state event {event_id} at {prev_id} is missing or not a state event")
            if event_id not in rejected:
                state[(event.type, event.state_key)] = event_id
        prev = stored.get(prev_id)
        if prev is not None and prev.state_key is not None and prev_id not in rejected:
            state[(prev.type, prev.state_key)] = prev_id
        return state

    async def _ensure_auth_events(self, origin: str, snap: RoomSnapshot, event: Event) -> None:
        wanted = list(event.auth_event_ids)
        if (create_id := create_event_id_of(event)) is not None:
            wanted.append(create_id)
        known = await self._graph.known(wanted)
        if all(e in known for e in wanted):
            return
        try:
            body = await self._client.get_json(
                origin, path("/_matrix/federation/v1/event_auth/{}/{}", snap.room_id, event.event_id))
        except FederationError as err:
            logger.info("event_auth for %s from %s failed: %s", event.event_id, origin, err)
            return  # check 4 then rejects it for its unknown auth events
        pdus = body.get("auth_chain") if isinstance(body, dict) else None
        if isinstance(pdus, list):
            checked = await self._checker.check_pdus(pdus, snap.version, origin, expected_room_id=snap.room_id)
            await self.store_outliers(snap.room_id, snap.version, [c.event for c in checked if isinstance(c, CheckedPdu)])

    async def _fetch_state(self, origin: str, snap: RoomSnapshot, event_id: str) -> list[Event]:
        try:
            body = await self._client.get_json(origin, path("/_matrix/federation/v1/state/{}", snap.room_id),
                                               query={"event_id": event_id})
        except FederationError as err:
            raise IntakeError(f"could not fetch the state at {event_id} from {origin}: {err}") from None
        pdus = [*(body.get("auth_chain") or []), *(body.get("pdus") or [])] if isinstance(body, dict) else []
        checked = await self._checker.check_pdus(pdus, snap.version, origin, expected_room_id=snap.room_id)
        return [c.event for c in checked if isinstance(c, CheckedPdu)]

    async def _fetch_events(self, origin: str, snap: RoomSnapshot, event_ids: Sequence[str]) -> list[Event]:
        limit = asyncio.Semaphore(FETCH_CONCURRENCY)

        async def one(event_id: str) -> Event | None:
            async with limit:
                try:
                    body = await self._client.get_json(origin, path("/_matrix/federation/v1/event/{}", event_id))
                    pdus = body.get("pdus") if isinstance(body, dict) else None
                    if not isinstance(pdus, list) or len(pdus) != 1:
                        return None
                    checked = await self._checker.check_pdu(pdus[0], snap.version, origin,
                                                            expected_room_id=snap.room_id)
                except (FederationError, PduDropped) as err:
                    logger.info("could not fetch %s from %s: %s", event_id, origin, err)
                    return None
                return checked.event if checked.event_id == event_id else None
        return [e for e in await asyncio.gather(*(one(i) for i in event_ids)) if e is not None]

    # --- outliers -----------------------------------------------------------------------------

    async def store_outliers(self, room_id: str, version: RoomVersion, events: Iterable[Event]) -> None:
        """Store events outside the timeline (auth chains, state), each checked against its own
        auth events, in auth order; ones we hold already are skipped."""
        pending = {e.event_id: e for e in events}
        if not pending:
            return
        known = await self._graph.known(list(pending))
        pending = {k: v for k, v in pending.items() if k not in known}
        rows: list[NewEvent] = []
        rejected_ids: set[str] = set()
        now = self._clock.now_ms()
        for event in _auth_order(pending):
            wanted = list(event.auth_event_ids)
            if (create_id := create_event_id_of(event)) is not None:
                wanted.append(create_id)
            auth_map = {e: pending[e] for e in wanted if e in pending}
            auth_map.update(await self._rooms.events.get_many([e for e in wanted if e not in auth_map], version))
            rejected_ids |= await self._graph.rejected_among([e for e in wanted if e not in pending])
            verdict = check_against_auth_events(event, auth_map, rejected_ids)
            if verdict.rejected:
                rejected_ids.add(event.event_id)
            rows.append(event_row(event, None, now, None, None, rejected=verdict.reason if verdict.rejected else None,
                                   outlier=True))
            self._rooms.events.put(event)
        if rows:
            batch = PersistBatch(room_id=room_id, events=rows)
            await self._store.persist(batch)
            self._events.stored(batch)

    async def _snapshot(self, room_id: str) -> RoomSnapshot:
        snap = await self._rooms.snapshot(room_id)
        if snap is None:
            raise IntakeError(f"unknown room {room_id}")
        return snap


def _auth_order(events: Mapping[str, Event]) -> list[Event]:
    """The events with each one's auth events (among them) first; depth breaks ties."""
    ordered: list[Event] = []
    done: set[str] = set()

    def visit(event: Event, path: set[str]) -> None:
        if event.event_id in done or event.event_id in path:
            return
        path.add(event.event_id)
        for auth_id in event.auth_event_ids:
            if auth_id in events:
                visit(events[auth_id], path)
        create_id = create_event_id_of(event)
        if create_id in events:
            visit(events[create_id], path)
        done.add(event.event_id)
        ordered.append(event)

    for event in sorted(events.values(), key=lambda e: e.depth):
        visit(event, set())
    return ordered


def _str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)
