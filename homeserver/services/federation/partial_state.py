"""The resync of a room joined with a partial state (faster joins, MSC3706/MSC3902; Synapse's
"partial state" joins, whose behaviour this follows).

Use case: a join whose send_join answer left the members out returns at once; this then asks
the servers the answer named (the one that answered first), in turn, for the state at our
join (/state_ids, then /state or /event for what we lack), stores it, makes the room's
current state the full state overlaid with what changed since the join, and clears the
partial flag, which wakes the readers waiting for every member. A server that fails is
followed by the next; when all fail, the resync waits (doubling, up to 5 minutes) and tries
again. Rooms still partial when the server starts resume their resync (`resume`).

The other servers' events accepted while partial are checked again on their full state;
those that fail now are marked rejected. With several processes on one database, a lease in
partial_state_rooms lets one of them resync a room at a time.

Invariants: the new snapshots, the events pointed at them and the rejections are written in
one transaction under the room's lock; the flag is cleared only after it committed (a crash
in between makes the next start redo an idempotent resync).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Mapping

from homeserver.core.ids import server_name_of
from homeserver.core.room_versions import RoomVersion
from homeserver.services.federation.intake import FederationIntake, IntakeError
from homeserver.services.federation.remote_state import StateIds, plan_group
from homeserver.services.rooms.event_rows import membership_row
from homeserver.services.rooms.events import EventService
from homeserver.services.rooms.partial_state import PartialStateRooms
from homeserver.services.rooms.state import RoomSnapshot, RoomStateCache
from storage.events import EventStore, PersistBatch
from storage.partial_state import PartialStateRoom
from storage.state import StateStore

logger = logging.getLogger(__name__)

FIRST_RETRY_S = 1.0
MAX_RETRY_S = 300.0
# How long one process holds a room's resync before another may take it over.
LEASE_MS = 5 * 60 * 1000


class PartialStateResync:
    def __init__(self, events: EventService, rooms: RoomStateCache, intake: FederationIntake, event_store: EventStore,
                 state: StateStore, tracker: PartialStateRooms, server_name: str, *,
                 rewritten: Callable[[str, int], None] | None = None) -> None:
        # Told (room, stream position) once a room's snapshots were rewritten here: what is
        # held in memory of its rows goes, and /sync sees the room move.
        self._rewritten = rewritten
        self._events = events
        self._rooms = rooms
        self._intake = intake
        self._event_store = event_store
        self._state = state
        self._tracker = tracker
        self._server_name = server_name
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, room_id: str) -> None:
        """Resync `room_id` in the background (once: a resync under way is left to finish)."""
        task = self._tasks.get(room_id)
        if task is None or task.done():
            self._tasks[room_id] = asyncio.create_task(self._run(room_id), name=f"partial-state resync {room_id}")

    async def resume(self) -> int:
        """At start-up: resync every room still partial. Returns how many."""
        rooms = await self._tracker.rooms()
        for row in rooms:
            logger.info("resuming the partial-state resync of %s", row.room_id)
            self.start(row.room_id)
        return len(rooms)

    async def stop(self) -> None:
        running = {room_id: t for room_id, t in self._tasks.items() if not t.done()}
        for task in running.values():
            task.cancel()
        await asyncio.gather(*running.values(), return_exceptions=True)
        self._tasks.clear()
        try:
            await self._tracker.release(list(running))
        except Exception:  # the database may be going away too: the leases then expire
            logger.exception("could not release the partial-state resyncs of %s", sorted(running))

    async def _run(self, room_id: str) -> None:
        delay = FIRST_RETRY_S
        while (row := await self._tracker.get(room_id)) is not None:
            try:
                # Another process on the database may be resyncing it (both resumed it).
                if await self._tracker.claim(room_id, LEASE_MS):
                    try:
                        if await self.resync(row):
                            return
                    finally:  # failed (or stopping): free for the next attempt, ours or another's
                        if await self._tracker.is_partial(room_id):
                            await self._tracker.release([room_id])
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("the partial-state resync of %s failed", room_id)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_S)

    async def resync(self, row: PartialStateRoom) -> bool:
        """One round over the room's servers; returns whether the full state is in."""
        for server in row.servers_in_room:
            if server == self._server_name:
                continue
            try:
                full_after_join = await self._intake.state_after(server, row.room_id, row.join_event_id)
            except IntakeError as err:
                logger.info("no full state of %s from %s: %s", row.room_id, server, err)
                continue
            if ("m.room.create", "") not in full_after_join:
                logger.info("%s sent a state of %s without its create event", server, row.room_id)
                continue
            async with self._events.room_lock(row.room_id):
                position = await self._apply(row, full_after_join)
            if position is None:  # the room, or our join, is gone: nothing left to complete
                position = 0
            await self._tracker.clear(row.room_id, row.join_event_id, position)
            logger.info("the full state of %s is in (from %s, %d entries): partial-state flag cleared",
                        row.room_id, server, len(full_after_join))
            return True
        return False

    async def _apply(self, row: PartialStateRoom, full_after_join: StateIds) -> int | None:
        """Every snapshot of the room from our join on (the events' states before and after,
        and the current state) becomes its full version: the full state after our join,
        overlaid with each entry that changed since (events received or sent while partial).
        New snapshots, as deltas on the partial ones, and the events pointed at them, in one
        transaction (as Synapse recomputes the state of its partial-state events). Returns the
        stream position the change took (None: the room or our join is gone)."""
        snap = await self._rooms.snapshot(row.room_id)
        join = await self._event_store.get_event(row.join_event_id)
        if snap is None or join is None or join.stream_ordering is None or join.state_after is None:
            return None
        partial_after_join = await self._state.state_ids(join.state_after)
        groups = await self._event_store.state_groups_since(row.room_id, join.stream_ordering)
        if snap.state_group is not None:
            groups.add(snap.state_group)
        partials: dict[int, tuple[StateIds, int]] = {}  # group -> (its partial state, its chain length)
        for group in sorted(groups):
            partials[group] = (dict(snap.state), snap.chain_length) if group == snap.state_group else \
                (await self._state.state_ids(group), await self._state.chain_length(group))

        def plan(rejected: Collection[str]) -> dict[int, tuple[StateIds, StateIds, int]]:
            """old group -> (partial, full, its chain), for the groups the full state changes."""
            plans = {}
            for group, (partial, chain) in partials.items():
                full = {**full_after_join, **{k: v for k, v in partial.items()
                                               if partial_after_join.get(k) != v and v not in rejected}}
                if group == join.state_before:  # the state before our join lacks the join itself
                    full.pop(join_key, None)
                    full.update({join_key: partial[join_key]} if join_key in partial else {})
                if full != partial:
                    plans[group] = (partial, full, chain)
            return plans

        join_key = (join.type, join.state_key or "")
        plans = plan(())
        version = snap.version
        # As Synapse, the events received while partial are checked again on their full state.
        rejected = await self._recheck(row.room_id, join.stream_ordering, version,
                                       {g: full for g, (_, full, _) in plans.items()})
        if rejected:
            plans = plan(rejected)
        current = plans[snap.state_group][1] if snap.state_group in plans else dict(snap.state)
        changed = {k: v for k, v in current.items() if snap.state.get(k) != v}
        state_events = await self._rooms.events.get_many(changed.values(), version)
        members = {k: state_events[v] for k, v in changed.items() if k[0] == "m.room.member" and v in state_events}
        replaced: dict[int, int] = {}
        new_snapshot: RoomSnapshot | None = None

        def build(positions: list[int], group_ids: list[int]) -> tuple[PersistBatch, list]:
            nonlocal new_snapshot
            new_groups = []
            current_group, current_chain = snap.state_group, snap.chain_length
            for new_id, (old, (partial, full, chain)) in zip(group_ids, plans.items()):
                group, new_chain = plan_group(new_id, full, old, partial, chain)
                new_groups.append(group)
                replaced[old] = group.id
                if old == snap.state_group:
                    current_group, current_chain = group.id, new_chain
            batch = PersistBatch(
                room_id=row.room_id,
                events=[],
                state_groups=new_groups,
                current_state=_current_rows(changed, members),
                # The members were there all along: they are recorded at our join's position.
                memberships=[membership_row(e, join.stream_ordering) for e in members.values() if e.membership],
                current_state_group=current_group if current_group != snap.state_group else None,
            )
            new_snapshot = RoomSnapshot(row.room_id, version, current_group, current_chain, current,
                                        dict(snap.extremities))
            return batch, []

        async def repoint_events() -> None:
            await self._event_store.replace_state_groups(row.room_id, join.stream_ordering, replaced)
            if rejected:
                await self._event_store.mark_rejected(rejected)

        # One stream position, no event at it: where eager /syncs see the room become whole.
        positions = await self._events.store(build, 1, len(plans), snapshot=lambda: new_snapshot,
                                             before_persist=repoint_events)
        if self._rewritten is not None:
            self._rewritten(row.room_id, positions[0])
        return positions[0]

    async def _recheck(self, room_id: str, join_position: int, version: RoomVersion,
                       full_states: Mapping[int, StateIds]) -> dict[str, str]:
        """The other servers' events accepted since our join that fail the auth rules on the
        full state before them: event ID -> why."""
        rejected: dict[str, str] = {}
        since = [(e, before) for e, sender, before in await self._event_store.accepted_since(room_id, join_position)
                 if server_name_of(sender) != self._server_name and before in full_states]
        events = await self._rooms.events.get_many([e for e, _ in since], version)
        for event_id, before in since:
            event = events.get(event_id)
            if event is None:
                continue
            verdict = await self._intake.check(version, event, full_states[before])
            if not verdict.accepted:
                logger.info("%s, accepted while the state of %s was partial, fails on the full state: %s",
                            event_id, room_id, verdict.reason)
                rejected[event_id] = verdict.reason or "fails the auth rules on the full state"
        return rejected


def _current_rows(changed: StateIds, members: Mapping[tuple[str, str], object]) -> dict:
    return {k: (v, getattr(members.get(k), "membership", None) if k[0] == "m.room.member" else None)
            for k, v in changed.items()}
