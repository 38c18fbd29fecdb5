"""GET /sync: everything a client must learn since its last token, or all of it on first sync.

A sync token `s{events}_{aux}_{typing}` carries three positions: the room-event stream, the
aux stream (account data, receipts, to-device, device lists, presence) and the typing serial.
Positions come from StreamTracker.current, which never passes an uncommitted position, so an
incremental sync can neither miss nor repeat a change. The per-room part (timeline, state,
summary, lazy-loaded members) is built by RoomSyncBuilder (sync/rooms.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from homeserver.core.filters import NO_FILTER, SyncFilter
from homeserver.errors import Codes, MatrixError
from homeserver.services.auth import Requester
from homeserver.services.e2ee.keys import E2EKeyService
from homeserver.services.ephemeral.account_data import AccountDataService
from homeserver.services.ephemeral.presence import PresenceService
from homeserver.services.ephemeral.receipts import ReceiptService
from homeserver.services.ephemeral.to_device import DeviceListService, ToDeviceService
from homeserver.services.ephemeral.typing import TypingService
from homeserver.services.push.notifications import total_counts
from homeserver.services.streams.aux import AuxStream
from homeserver.services.streams.notifier import Notifier
from homeserver.services.streams.tracker import StreamTracker
from homeserver.services.sync.changes import SyncChanges
from homeserver.services.sync.rooms import RoomSyncBuilder, RoomWindow
from storage.account_data import AccountDataStore
from storage.sync import RoomMembershipAt, SyncQueries

MAX_TIMEOUT_MS = 5 * 60 * 1000
SET_PRESENCE_VALUES = ("online", "offline", "unavailable")
# (user_id, room_ids) -> room -> {notification_count, highlight_count (main timeline),
# threads: {root: counts}}, past the user's read receipts; provided by the push service
# (NotificationService.sync_unread_counts).
UnreadCounts = Callable[[str, list[str]], Awaitable[dict[str, Any]]]
PushRules = Callable[[str], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class SyncToken:
    events: int
    aux: int = 0
    typing: int = 0

    def __str__(self) -> str:
        return f"s{self.events}_{self.aux}_{self.typing}"

    @classmethod
    def parse(cls, token: str) -> SyncToken:
        if token.startswith("s"):
            parts = token[1:].split("_")
            if 1 <= len(parts) <= 3 and all(p.isdigit() for p in parts):
                return cls(*(int(p) for p in parts))
        raise MatrixError(400, Codes.INVALID_PARAM, f"Invalid sync token {token!r}")


class SyncService:
    def __init__(self, queries: SyncQueries, rooms: RoomSyncBuilder, stream: StreamTracker, aux: AuxStream,
                 notifier: Notifier, account_data_store: AccountDataStore, account_data: AccountDataService,
                 receipts: ReceiptService, typing: TypingService, presence: PresenceService,
                 to_device: ToDeviceService, device_lists: DeviceListService, e2e_keys: E2EKeyService, *,
                 builds_at_once: int) -> None:
        self._queries = queries
        self._rooms = rooms
        self._stream = stream
        self._aux = aux
        self._notifier = notifier
        self._account_data_store = account_data_store
        self._account_data = account_data
        self._receipts = receipts
        self._typing = typing
        self._presence = presence
        self._to_device = to_device
        self._device_lists = device_lists
        self._e2e_keys = e2e_keys
        # Responses built at once (config tuning.sync_builds_at_once). A message to a room of
        # thousands wakes thousands of /syncs: built all together they share the CPU and the
        # database pool, each one's queries wait behind everyone's, and nearly all finish at
        # the end (the median receiver of a fan-out to 5,000 got its message 90 % of the way
        # through); a few at a time, in the order they woke, each is answered as soon as its
        # turn is done, for the same total work. Not fewer than 64: a build may wait for the
        # unread counts that the /syncs building at once read in one query (16 made that 300
        # queries for 5,000 cold /syncs).
        self._building = asyncio.Semaphore(builds_at_once)
        # Wired by the app to the push service (unread counts, the m.push_rules account data).
        self.unread_counts: UnreadCounts | None = None
        self.push_rules: PushRules | None = None
        # Wired by the app: where rooms and users' memberships last changed (sync/changes.py).
        self.changes: SyncChanges | None = None
        # Wired by the app to the faster joins' partial-state rooms: (rooms, after, upto) ->
        # those whose full state came in within (after, upto].
        self.full_state_arrived: Callable[[list[str], int, int], Awaitable[set[str]]] | None = None

    def current_token(self) -> SyncToken:
        return SyncToken(self._stream.current, self._aux.current, self._typing.serial)

    async def sync(self, requester: Requester, *, since: str | None, timeout_ms: int, full_state: bool,
                   sync_filter: SyncFilter | None = None, set_presence: str | None = None) -> dict[str, Any]:
        """`sync_filter`: the request's filter, compiled (FilterService.sync_filter)."""
        if set_presence is not None and set_presence not in SET_PRESENCE_VALUES:
            raise MatrixError(400, Codes.INVALID_PARAM, "'set_presence' must be online, offline or unavailable")
        since_token = SyncToken.parse(since) if since else None
        sync_filter_ = sync_filter if sync_filter is not None else NO_FILTER
        if not requester.is_guest:
            await self._presence.on_sync(requester.user_id, set_presence)
        deadline = time.monotonic() + min(max(timeout_ms, 0), MAX_TIMEOUT_MS) / 1000
        while True:
            upto = self.current_token()
            if since_token is not None:
                # A token from the future (a restored database): resync from now on.
                since_token = SyncToken(min(since_token.events, upto.events), min(since_token.aux, upto.aux),
                                        since_token.typing)
            async with self._building:
                body, changed = await self._build(requester, since_token, upto, full_state, sync_filter_)
            remaining = deadline - time.monotonic()
            if changed or since_token is None or full_state or remaining <= 0:
                return body
            future = self._notifier.register(requester.user_id)
            if self.current_token() != upto:  # something landed while we were building
                self._notifier.notify_users([requester.user_id])
            await self._notifier.wait(requester.user_id, future, remaining)
            if time.monotonic() >= deadline and self.current_token() == upto:
                return body

    async def _build(self, requester: Requester, since: SyncToken | None, upto: SyncToken, full_state: bool,
                     f: SyncFilter) -> tuple[dict[str, Any], bool]:
        user_id = requester.user_id
        initial = since is None or full_state
        since_aux = None if since is None else since.aux
        # Most wake-ups are room events only: skip every aux-stream read when it did not move.
        aux_moved = initial or since_aux != upto.aux
        to_device: list[dict[str, Any]] = []
        if aux_moved:
            to_device, aux_upto = await self._to_device.for_sync(user_id, requester.device_id, since_aux, upto.aux)
            upto = dataclasses.replace(upto, aux=aux_upto)
        ignored = await self._account_data.ignored_users(user_id)

        all_now = await self._queries.memberships_at(user_id, upto.events)
        # None of the user's memberships moved since `since` (the usual wake-up): only the
        # rooms that moved, or have ephemeral news, are looked at, found without walking
        # every room of the user (sync/changes.py); None when that is not known.
        steady = since is not None and not initial and self.changes is not None \
            and self.changes.memberships.changed_after(user_id, since.events) is False
        moved_rooms = self.changes.rooms.entities_changed_after(since.events, len(all_now)) \
            if steady and self.changes is not None and since is not None else None
        now: dict[str, RoomMembershipAt] = {}
        joined_all: list[str] = []
        if moved_rooms is None:
            now = {r: m for r, m in all_now.items() if f.allows_room(r)}
            joined_all = [r for r, m in now.items() if m.membership == "join"]
        elif aux_moved or since is None or since.typing != upto.typing:
            joined_all = [r for r, m in all_now.items() if m.membership == "join" and f.allows_room(r)]

        # The typing serial did not move: no room's typing did either.
        typing = self._typing.typing_events(joined_all, None if initial else since.typing, upto.typing) \
            if initial or since is None or since.typing != upto.typing else {}
        receipts = await self._receipts.ephemeral_events(user_id, joined_all, None if initial else since_aux,
                                                         upto.aux) if aux_moved else {}
        account_rows = await self._account_data_store.changed(user_id, None if initial else since_aux, upto.aux) \
            if aux_moved else []
        room_account_data: dict[str, list[dict[str, Any]]] = {}
        global_account_data: list[dict[str, Any]] = []
        for row in account_rows:
            if row.room_id:
                if f.room_account_data.matches(row.type, None, room_id=row.room_id):
                    room_account_data.setdefault(row.room_id, []).append({"type": row.type, "content": row.content})
            elif row.type != "m.push_rules" and f.account_data.matches(row.type, None):
                global_account_data.append({"type": row.type, "content": row.content})
        push_rules_changed = initial or any(r.type == "m.push_rules" and not r.room_id for r in account_rows)
        if push_rules_changed and self.push_rules is not None and f.account_data.matches("m.push_rules", None):
            global_account_data.append({"type": "m.push_rules", "content": await self.push_rules(user_id)})

        if moved_rooms is not None:
            looked_at = moved_rooms | typing.keys() | receipts.keys() | room_account_data.keys()
            now = {r: all_now[r] for r in looked_at if r in all_now and f.allows_room(r)}
        before = all_now if steady else \
            await self._queries.memberships_at(user_id, since.events) if since is not None else {}
        joined = [r for r, m in now.items() if m.membership == "join"]

        window = RoomWindow(since=None if since is None else since.events, upto=upto.events, full_state=full_state)
        join: dict[str, Any] = {}
        invite: dict[str, Any] = {}
        knock: dict[str, Any] = {}
        leave: dict[str, Any] = {}
        # Memberships that moved in the window: a new membership, or the same one left and
        # taken again (a profile change alone is no change: the room goes on incrementally).
        moved = [r for r, m in now.items() if since is not None and before.get(r) is not None
                 and before[r].event_id != m.event_id]
        own_changes = await self._queries.own_membership_changes(user_id, moved, since.events, upto.events) \
            if moved and since is not None else {}

        def _same(previous: RoomMembershipAt | None, current: RoomMembershipAt) -> bool:
            if previous is None:
                return False
            if previous.event_id == current.event_id:
                return True
            return previous.membership == current.membership and \
                all(m == current.membership for m in own_changes.get(current.room_id, ()))

        active = [r for r in joined if not initial and _same(before.get(r), now[r])]
        with_news = await self._queries.rooms_with_events_between(active, since.events, upto.events) \
            if active and since is not None else set()
        # Rooms joined with a partial state whose full state came in since the last sync: an
        # eager sync (no lazy-loaded members) hands them over again, whole, as newly joined
        # (as Synapse does), so the client learns the members it lacked.
        whole_again = await self.full_state_arrived(joined, since.events, upto.events) \
            if self.full_state_arrived is not None and not initial and not f.state.lazy_load_members else set()
        newly_joined: list[str] = []
        newly_left: list[str] = []
        # The rooms to build, all at once below: (section, room_id, window, membership).
        to_build: list[tuple[dict[str, Any], str, RoomWindow, RoomMembershipAt]] = []
        for room_id, membership in now.items():
            previous = before.get(room_id)
            changed = not _same(previous, membership) or room_id in whole_again
            if membership.membership == "join":
                if initial or changed:
                    to_build.append((join, room_id, window.fresh(), membership))
                    if changed and since is not None:
                        newly_joined.append(room_id)
                elif room_id in with_news:
                    to_build.append((join, room_id, window, membership))
                elif room_id in typing or room_id in receipts or room_id in room_account_data:
                    join[room_id] = self._rooms.quiet_room(window)
            elif membership.membership in ("invite", "knock") and (since is None or changed):
                if membership.membership == "invite" and membership.sender in ignored:
                    continue  # spec: invites from ignored users are not shown
                key = f"{membership.membership}_state"
                section = invite if membership.membership == "invite" else knock
                section[room_id] = {key: {"events": await self._rooms.stripped_state(room_id, membership)}}
            elif membership.membership in ("leave", "ban") and since is not None and changed \
                    and previous is not None and previous.membership in ("join", "invite", "knock"):
                if previous.membership == "join":
                    newly_left.append(room_id)
                # Up to the departure; nothing after it. Joined and left within the window:
                # the client never had the room's state, so all of it (as Synapse).
                joined_between = previous.membership != "join" and "join" in own_changes.get(room_id, ())
                departed = RoomWindow(since=None if joined_between else since.events,
                                      upto=membership.stream_ordering, full_state=joined_between)
                to_build.append((leave, room_id, departed, membership))
            elif membership.membership in ("leave", "ban") and since is None and f.include_leave:
                departed = RoomWindow(since=None, upto=membership.stream_ordering, full_state=True)
                to_build.append((leave, room_id, departed, membership))
        built = await self._rooms.rooms(requester, [(r, w, m) for _, r, w, m in to_build], f, ignored)
        for section, room_id, _, _ in to_build:
            section[room_id] = built[room_id]
        for room_id in newly_joined:
            join[room_id]["timeline"]["limited"] = True  # a room joined since the last sync: its history is news (Synapse)

        for room_id, room in join.items():
            ephemeral = [e for e in (typing.get(room_id), receipts.get(room_id)) if e is not None
                         and f.ephemeral.matches(e["type"], None)]
            room["ephemeral"] = {"events": ephemeral[:f.ephemeral.limit] if f.ephemeral.limit is not None else ephemeral}
            room["account_data"] = {"events": room_account_data.get(room_id, [])}
        if since is not None and not full_state:
            # Nothing that passed the filters (or the ignore list): the room is not part of this
            # sync, as Synapse (sytest 49ignore); the long-poll goes on waiting.
            for room_id in [r for r, room in join.items() if r not in newly_joined and not any(
                    room[k]["events"] for k in ("timeline", "state", "ephemeral", "account_data"))]:
                del join[room_id]
        await self._add_unread_counts(user_id, join, f)

        body: dict[str, Any] = {"next_batch": str(upto)}
        rooms: dict[str, Any] = {}
        for name, section in (("join", join), ("invite", invite), ("knock", knock), ("leave", leave)):
            if section:
                rooms[name] = section
        body["rooms"] = rooms
        presence = await self._presence.presence_events(user_id, None if initial else since_aux, upto.aux) \
            if aux_moved else []
        membership_changes: list[tuple[str, str, str]] = []
        if since is not None and since.events != upto.events:
            # A room that did not move has no membership change to give.
            in_view = set(joined) | set(newly_left) if moved_rooms is None else \
                {r for r in moved_rooms if r in now and now[r].membership == "join"} | set(newly_left)
            membership_changes = await self._queries.membership_changes_between(
                sorted(in_view), since.events, upto.events) if in_view else []
            # Whoever a join brings into view comes with their presence, old as it may be
            # (as Synapse does): everyone of a room just joined, anyone who just joined ours.
            extra = {u for r, u, m in membership_changes if m in ("join", "invite", "knock") and r not in newly_joined}
            for room_id in newly_joined:
                extra.update(await self._queries.joined_members(room_id))
            extra -= {user_id} | {e["sender"] for e in presence}
            presence += await self._presence.current_states(sorted(extra))
        presence = [e for e in presence if f.presence.matches(e["type"], e["sender"])]
        if f.presence.limit is not None:
            presence = presence[:f.presence.limit]
        changed = bool(rooms)
        for key, events in (("account_data", global_account_data), ("presence", presence), ("to_device", to_device)):
            if events:
                body[key] = {"events": events}
                changed = True
        if since is not None and (aux_moved or since.events != upto.events):
            device_lists = await self._device_lists.for_sync(
                user_id, since.aux, upto.aux, membership_changes, newly_joined, newly_left)
            if device_lists["changed"] or device_lists["left"]:
                body["device_lists"] = device_lists
                changed = True
        if aux_moved and requester.device_id:
            # Key counts change with uploads and claims, both of which move the aux stream.
            body["device_one_time_keys_count"] = await self._e2e_keys.one_time_key_counts(
                user_id, requester.device_id)
            body["device_unused_fallback_key_types"] = await self._e2e_keys.unused_fallback_key_types(
                user_id, requester.device_id)
        return body, changed

    async def key_changes(self, requester: Requester, from_token: str, to_token: str) -> dict[str, list[str]]:
        """GET /keys/changes: users whose devices changed between two sync tokens."""
        since, upto = SyncToken.parse(from_token), SyncToken.parse(to_token)
        user_id = requester.user_id
        joined_then = {r for r, m in (await self._queries.memberships_at(user_id, since.events)).items()
                       if m.membership == "join"}
        joined_now = {r for r, m in (await self._queries.memberships_at(user_id, upto.events)).items()
                      if m.membership == "join"}
        membership_changes = await self._queries.membership_changes_between(
            sorted(joined_now | joined_then), since.events, upto.events) if since.events < upto.events else []
        return await self._device_lists.for_sync(user_id, since.aux, upto.aux, membership_changes,
                                                 sorted(joined_now - joined_then), sorted(joined_then - joined_now))

    async def _add_unread_counts(self, user_id: str, join: dict[str, Any], f: SyncFilter) -> None:
        if self.unread_counts is None or not join:
            return
        counts = await self.unread_counts(user_id, list(join))
        threaded = f.timeline.unread_thread_notifications
        for room_id, room in join.items():
            found = counts.get(room_id)
            if found is None:
                room["unread_notifications"] = {"notification_count": 0, "highlight_count": 0}
            elif threaded:
                room["unread_notifications"] = {"notification_count": found["notification_count"],
                                                "highlight_count": found["highlight_count"]}
                if found["threads"]:
                    room["unread_thread_notifications"] = found["threads"]
            else:  # a client that does not ask for threads counts them in the room
                room["unread_notifications"] = total_counts(found)


