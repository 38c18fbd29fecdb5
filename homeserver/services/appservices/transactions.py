"""What goes into an appservice's next transaction, read from the streams after its feed's
positions (spec: "Pushing events", "Pushing ephemeral data"; MSC2409, MSC4203, MSC3202).

- Events: the room events after `event_position` that concern it (its sender or a user of
  its namespaces sent them or is their membership target, or their room concerns it), in
  stream order, at most 100 per transaction (as Synapse), as clients see them. Before an event
  goes out, a local user it names who does not exist yet is asked for (GET /users/{userId}),
  as Synapse does, so that the appservice can create its ghost first.
- Ephemeral data, for those that ask (`receive_ephemeral`, or MSC2409's
  `de.sorunome.msc2409.push_ephemeral`): typing and receipts in rooms that concern it
  (private receipts only of its own users), presence of its users and of users in its rooms,
  and to-device messages to its users (MSC4203, with `to_user_id` and `to_device_id`).
- MSC3202 (`org.matrix.msc3202: true`): users whose device lists changed (its users and users
  in its rooms), and the one-time-key counts and unused fallback key types of its users in the
  transaction's rooms, its sender and the to-device recipients.

Everything but typing comes from the database by stream position, so what was committed is
found after a restart too; typing lives in memory (it is stale after a restart anyway).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from homeserver.core.appservices import AppService
from homeserver.core.events import STRIPPED_STATE_TYPES
from homeserver.core.room_versions import KNOWN_ROOM_VERSIONS, get_room_version
from homeserver.services.appservices.interest import RoomInterest
from homeserver.services.ephemeral.presence import PresenceService
from homeserver.services.ephemeral.receipts import receipt_event
from homeserver.services.ephemeral.typing import TypingService
from homeserver.services.rooms.event_format import EventFormatter
from homeserver.services.rooms.state import RoomStateCache
from storage.appservices import AppServiceQueries, StreamEvent
from storage.events import EventRow, EventStore
from storage.receipts import ReceiptRow
from storage.rooms import RoomStore

# As Synapse: at most 100 events and 100 to-device messages per transaction.
MAX_EVENTS = 100
MAX_TO_DEVICE = 100
# Stream rows read per look (most concern nobody when the appservice is small).
SCAN_LIMIT = 500


@dataclass
class Batch:
    """The next transaction's content and the positions it covers."""
    event_position: int
    aux_position: int
    events: list[dict[str, Any]] = field(default_factory=list)
    ephemeral: list[dict[str, Any]] = field(default_factory=list)
    to_device: list[dict[str, Any]] = field(default_factory=list)
    device_lists_changed: list[str] = field(default_factory=list)
    one_time_keys_count: dict[str, Any] = field(default_factory=dict)
    unused_fallback_key_types: dict[str, Any] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.events or self.ephemeral or self.to_device or self.device_lists_changed)

    def body(self, service: AppService) -> dict[str, Any]:
        """The PUT /transactions body, with the keys this appservice reads (as Synapse sends them)."""
        body: dict[str, Any] = {"events": self.events}
        if service.receive_ephemeral:
            body["ephemeral"] = self.ephemeral
        if service.unstable_ephemeral:
            body["de.sorunome.msc2409.ephemeral"] = self.ephemeral
        if service.wants_ephemeral:
            body["de.sorunome.msc2409.to_device"] = self.to_device
        if service.msc3202:
            if self.one_time_keys_count:
                body["org.matrix.msc3202.device_one_time_keys_count"] = self.one_time_keys_count
                body["org.matrix.msc3202.device_one_time_key_counts"] = self.one_time_keys_count  # older name
            if self.unused_fallback_key_types:
                body["org.matrix.msc3202.device_unused_fallback_key_types"] = self.unused_fallback_key_types
            if self.device_lists_changed:
                body["org.matrix.msc3202.device_lists"] = {"changed": self.device_lists_changed, "left": []}
        return body


class TransactionBuilder:
    def __init__(self, queries: AppServiceQueries, events: EventStore, rooms: RoomStateCache, room_store: RoomStore,
                 formatter: EventFormatter, interest: RoomInterest, typing: TypingService,
                 presence: PresenceService, lookups: Any, server_name: str) -> None:
        self._queries = queries
        self._events = events
        self._rooms = rooms
        self._room_store = room_store
        self._formatter = formatter
        self._interest = interest
        self._typing = typing
        self._presence = presence
        self._lookups = lookups  # AppServiceLookups: asks appservices for users we do not know
        self._server_name = server_name

    async def build(self, service: AppService, event_position: int, aux_position: int, events_upto: int,
                    aux_upto: int, typing_rooms: set[str]) -> Batch:
        batch = Batch(event_position, aux_position)
        if events_upto > event_position:
            await self._add_events(service, batch, events_upto)
        wants_aux = service.wants_ephemeral or service.msc3202
        if wants_aux and aux_upto > aux_position:
            await self._add_aux(service, batch, aux_upto)
        else:
            batch.aux_position = max(aux_position, aux_upto)
        if service.wants_ephemeral and typing_rooms:
            await self._add_typing(service, batch, typing_rooms)
        if service.msc3202 and not batch.empty:
            await self._add_key_counts(service, batch)
        return batch

    # --- events ------------------------------------------------------------------------------

    async def _add_events(self, service: AppService, batch: Batch, upto: int) -> None:
        rows = await self._queries.events_after(batch.event_position, upto, SCAN_LIMIT)
        chosen: list[StreamEvent] = []
        position = upto if len(rows) < SCAN_LIMIT else rows[-1].stream_ordering
        for row in rows:
            if await self._concerns(service, row):
                if len(chosen) == MAX_EVENTS:
                    position = chosen[-1].stream_ordering
                    break
                chosen.append(row)
        batch.event_position = position
        if not chosen:
            return
        await self._introduce_users(service, chosen)
        stored = await self._events.get_events([r.event_id for r in chosen])
        by_room: dict[str, list[EventRow]] = {}
        for row in chosen:
            if row.event_id in stored:
                by_room.setdefault(row.room_id, []).append(stored[row.event_id])
        formatted: dict[str, dict[str, Any]] = {}
        for room_id, room_rows in by_room.items():
            version = await self._version_of(room_id)
            for event in await self._formatter.format_events(room_rows, version, None, bundle=False):
                formatted[event["event_id"]] = event
        batch.events = [formatted[r.event_id] for r in chosen if r.event_id in formatted]
        for event in batch.events:
            if event["type"] == "m.room.member" and event["content"].get("membership") == "invite":
                event["unsigned"]["invite_room_state"] = await self._invite_state(event)

    async def _concerns(self, service: AppService, row: StreamEvent) -> bool:
        return (service.is_interested_in_event(row.sender, row.type, row.state_key, row.room_id)
                or await self._interest.concerns(service, row.room_id))

    async def _introduce_users(self, service: AppService, rows: list[StreamEvent]) -> None:
        """As Synapse: a local user an event names (its sender, a membership's target) who does
        not exist yet is asked for from the appservices of their namespace, before the event
        goes out (a bridge creates the ghost an invite was sent to)."""
        named = {r.sender for r in rows}
        named.update(r.state_key for r in rows if r.type == "m.room.member" and r.state_key)
        await self._lookups.introduce_users(named)

    async def _invite_state(self, invite: dict[str, Any]) -> list[dict[str, Any]]:
        """As Synapse gives appservices (and clients): the stripped state that lets the invitee
        recognise the room (the name, the creator, the inviter's membership...)."""
        saved = await self._queries.stripped_state(invite["event_id"])  # an invite from another server
        if saved is not None:
            return [e for e in saved if isinstance(e, dict)]
        snap = await self._rooms.snapshot(invite["room_id"])
        if snap is None:
            return []
        keys = [(t, "") for t in STRIPPED_STATE_TYPES] + [("m.room.member", invite["sender"])]
        events = await self._rooms.state_events(snap, keys)
        return [{"type": e.type, "state_key": e.state_key, "content": e.content, "sender": e.sender}
                for e in events.values()]

    async def _version_of(self, room_id: str):
        snap = await self._rooms.snapshot(room_id)
        if snap is not None:
            return snap.version
        room = await self._room_store.get_room(room_id)
        if room is not None and room.room_version in KNOWN_ROOM_VERSIONS:
            return get_room_version(room.room_version)
        return get_room_version("10")  # only its redaction rules matter here

    # --- ephemeral data and to-device messages ---------------------------------------------------

    async def _add_aux(self, service: AppService, batch: Batch, upto: int) -> None:
        after = batch.aux_position
        if service.wants_ephemeral:
            upto = await self._add_to_device(service, batch, after, upto)
            batch.ephemeral += await self._receipts(service, after, upto)
            batch.ephemeral += await self._presence_of(service, after, upto)
        if service.msc3202:
            changed = await self._queries.device_lists_changed_between(after, upto)
            batch.device_lists_changed = sorted([u for u in changed if await self._concerns_user(service, u)])
        batch.aux_position = upto

    async def _add_to_device(self, service: AppService, batch: Batch, after: int, upto: int) -> int:
        """Its users' to-device messages in (after, upto]; returns where the batch stops (earlier
        than `upto` when there were more than MAX_TO_DEVICE: never inside one position)."""
        rows = await self._queries.to_device_between(after, upto, MAX_TO_DEVICE + 1)
        if len(rows) > MAX_TO_DEVICE:
            last = rows[MAX_TO_DEVICE][2]
            cut = last - 1
            if cut <= after:  # one position holds more than the limit: take it whole
                cut = last
                rows = await self._queries.to_device_between(after, last, 1_000_000)
            rows = [r for r in rows if r[2] <= cut]
            upto = cut
        batch.to_device = [{"to_user_id": user_id, "to_device_id": device_id, **message}
                           for user_id, device_id, _, message in rows if service.is_interested_in_user(user_id)]
        return upto

    async def _receipts(self, service: AppService, after: int, upto: int) -> list[dict[str, Any]]:
        by_room: dict[str, list[ReceiptRow]] = {}
        for row in await self._queries.receipts_between(after, upto):
            if row.receipt_type == "m.read.private" and not service.is_interested_in_user(row.user_id):
                continue  # spec: private receipts only of its own users
            by_room.setdefault(row.room_id, []).append(row)
        out = []
        for room_id, rows in by_room.items():
            if await self._interest.concerns(service, room_id):
                out.append({**receipt_event(rows), "room_id": room_id})
        return out

    async def _presence_of(self, service: AppService, after: int, upto: int) -> list[dict[str, Any]]:
        users = [u for u in await self._queries.presence_changed_between(after, upto)
                 if await self._concerns_user(service, u)]
        return await self._presence.presence_of_users(users, after, upto) if users else []

    async def _concerns_user(self, service: AppService, user_id: str) -> bool:
        """Its own user, or a user in a room that concerns it (presence, device lists)."""
        if service.is_interested_in_user(user_id):
            return True
        for room_id in await self._queries.joined_rooms(user_id):
            if await self._interest.concerns(service, room_id):
                return True
        return False

    async def _add_typing(self, service: AppService, batch: Batch, rooms: set[str]) -> None:
        for room_id in sorted(rooms):
            if not await self._interest.concerns(service, room_id):
                continue
            # Serial 0: the room's current typers, whenever it last changed.
            event = self._typing.typing_events([room_id], 0, self._typing.serial).get(room_id)
            if event is not None:
                batch.ephemeral.append({**event, "room_id": room_id})

    # --- MSC3202 key counts -----------------------------------------------------------------------

    async def _add_key_counts(self, service: AppService, batch: Batch) -> None:
        users = {service.sender} | {m["to_user_id"] for m in batch.to_device}
        rooms = {e["room_id"] for e in batch.events} | {e["room_id"] for e in batch.ephemeral if "room_id" in e}
        for room_id in rooms:
            members = await self._queries.local_joined_members(room_id, self._server_name)
            users.update(m for m in members if service.is_interested_in_user(m))
        batch.one_time_keys_count = await self._queries.one_time_key_counts(sorted(users))
        batch.unused_fallback_key_types = await self._queries.unused_fallback_key_types(sorted(users))
