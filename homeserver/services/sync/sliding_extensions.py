"""Sliding sync extensions: to-device (MSC3885), e2ee (MSC3884), account data (MSC3959),
receipts (MSC3960) and typing (MSC3961).

The room-scoped ones (account data, receipts, typing) cover the rooms of the lists and
subscriptions they name. A connection remembers, per room, the aux position up to which it
has the room's account data and receipts, so a room that leaves the window and comes back
gets what it missed meanwhile; a room new to the connection gets everything it has.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from homeserver.services.auth import Requester
from homeserver.services.ephemeral.receipts import ReceiptService
from homeserver.services.ephemeral.to_device import DeviceListService, ToDeviceService
from homeserver.services.ephemeral.typing import TypingService
from homeserver.services.sync.sliding_request import WILDCARD, Extensions, ExtensionScope
from homeserver.services.sync.sliding_rooms import BuiltRoom
from homeserver.services.sync.sync import SyncService
from storage.account_data import AccountDataStore
from storage.sync import SlidingRoomRow, SyncQueries


class DeviceKeyCounts(Protocol):
    """The two reads of the e2e keys service the e2ee extension needs."""

    async def one_time_key_counts(self, user_id: str, device_id: str) -> dict[str, int]: ...

    async def unused_fallback_key_types(self, user_id: str, device_id: str) -> list[str]: ...


@dataclass
class ExtensionPositions:
    """Per connection: room -> the aux position its account data / receipts were sent up to."""
    account_data: dict[str, int] = field(default_factory=dict)
    receipts: dict[str, int] = field(default_factory=dict)

    def copy(self) -> ExtensionPositions:
        return ExtensionPositions(dict(self.account_data), dict(self.receipts))


@dataclass(frozen=True)
class Window:
    """What the response covers: the rooms in each list's ranges, the subscribed rooms, the
    user's rooms, and the positions (None on a connection's first request)."""
    list_rooms: dict[str, list[str]]
    subscribed: list[str]
    rooms: dict[str, SlidingRoomRow]
    since_events: int | None
    since_aux: int | None
    since_typing: int | None
    upto_events: int
    upto_aux: int
    upto_typing: int

    def scoped(self, scope: ExtensionScope) -> list[str]:
        chosen: dict[str, None] = {}
        lists = self.list_rooms if WILDCARD in scope.lists else {k: self.list_rooms[k] for k in scope.lists
                                                                   if k in self.list_rooms}
        for room_ids in lists.values():
            chosen.update(dict.fromkeys(room_ids))
        subscribed = self.subscribed if WILDCARD in scope.rooms else [r for r in scope.rooms if r in self.subscribed]
        chosen.update(dict.fromkeys(subscribed))
        return list(chosen)

    def joined(self, room_ids: Iterable[str]) -> list[str]:
        return [r for r in room_ids if self.rooms[r].membership == "join"]


class SlidingExtensions:
    def __init__(self, queries: SyncQueries, account_data: AccountDataStore, receipts: ReceiptService,
                 typing: TypingService, to_device: ToDeviceService, device_lists: DeviceListService,
                 keys: DeviceKeyCounts, sync: SyncService) -> None:
        self._queries = queries
        self._account_data = account_data
        self._receipts = receipts
        self._typing = typing
        self._to_device = to_device
        self._device_lists = device_lists
        self._keys = keys
        self._sync = sync  # its push_rules callable, wired by the app

    async def build(self, requester: Requester, request: Extensions, window: Window, rooms: dict[str, BuiltRoom],
                    positions: ExtensionPositions) -> tuple[dict[str, Any], bool]:
        """The `extensions` of a response (updating `positions`), and whether any has news."""
        out: dict[str, Any] = {}
        news = False
        if request.to_device is not None:
            out["to_device"] = await self._to_device_messages(requester, request.to_device.since, window)
            news |= bool(out["to_device"]["events"])
        if request.e2ee:
            out["e2ee"] = await self._e2ee(requester, window)
            lists = out["e2ee"].get("device_lists")
            news |= bool(lists and (lists["changed"] or lists["left"]))
        if request.account_data is not None:
            out["account_data"] = await self._account_data_of(requester, window.scoped(request.account_data),
                                                              window, positions)
            news |= bool(out["account_data"]["global"] or out["account_data"]["rooms"])
        if request.receipts is not None:
            room_ids = window.joined(window.scoped(request.receipts))
            out["receipts"] = {"rooms": await self._receipts_of(requester, room_ids, window, rooms, positions)}
            news |= bool(out["receipts"]["rooms"])
        if request.typing is not None:
            room_ids = window.joined(window.scoped(request.typing))
            out["typing"] = {"rooms": self._typing_of(room_ids, window, rooms)}
            news |= bool(out["typing"]["rooms"])
        return out, news

    # --- to-device and e2ee ------------------------------------------------------------------------------

    async def _to_device_messages(self, requester: Requester, since: int | None, window: Window) -> dict[str, Any]:
        if since is not None and since > window.upto_aux:
            return {"next_batch": str(since), "events": []}  # a token from the future: wait for it
        # Messages up to `since` are acknowledged (deleted); the rest wait for the next `since`.
        events, upto = await self._to_device.for_sync(requester.user_id, requester.device_id, since, window.upto_aux)
        return {"next_batch": str(upto), "events": events}

    async def _e2ee(self, requester: Requester, window: Window) -> dict[str, Any]:
        user_id, device_id = requester.user_id, requester.device_id
        out: dict[str, Any] = {
            "device_one_time_keys_count": await self._keys.one_time_key_counts(user_id, device_id) if device_id else {},
            "device_unused_fallback_key_types":
                await self._keys.unused_fallback_key_types(user_id, device_id) if device_id else [],
        }
        if window.since_events is None or window.since_aux is None:
            return out
        before = await self._queries.memberships_at(user_id, window.since_events)
        joined = {r for r, row in window.rooms.items() if row.membership == "join"}
        newly_joined = [r for r in sorted(joined) if r not in before or before[r].membership != "join"]
        newly_left = [r for r, m in before.items() if m.membership == "join" and r not in joined]
        changes = await self._queries.membership_changes_between(
            sorted(joined | set(newly_left)), window.since_events, window.upto_events)
        out["device_lists"] = await self._device_lists.for_sync(
            user_id, window.since_aux, window.upto_aux, changes, newly_joined, sorted(newly_left))
        return out

    # --- account data ---------------------------------------------------------------------------------------

    async def _account_data_of(self, requester: Requester, room_ids: list[str], window: Window,
                               positions: ExtensionPositions) -> dict[str, Any]:
        user_id = requester.user_id
        sinces = [window.since_aux, *(positions.account_data.get(r) for r in room_ids)]
        oldest = None if None in sinces else min(s for s in sinces if s is not None)
        rows = await self._account_data.changed(user_id, oldest, window.upto_aux)
        since = window.since_aux
        global_events = [{"type": r.type, "content": r.content} for r in rows
                         if not r.room_id and r.type != "m.push_rules" and (since is None or r.stream_id > since)]
        push_rules = self._sync.push_rules
        rules_changed = since is None or any(
            r.type == "m.push_rules" and not r.room_id and r.stream_id > since for r in rows)
        if push_rules is not None and rules_changed:
            global_events.append({"type": "m.push_rules", "content": await push_rules(user_id)})
        by_room: dict[str, list[dict[str, Any]]] = {}
        wanted = set(room_ids)
        for r in rows:
            room_since = positions.account_data.get(r.room_id)
            if r.room_id in wanted and (room_since is None or r.stream_id > room_since):
                by_room.setdefault(r.room_id, []).append({"type": r.type, "content": r.content})
        for room_id in room_ids:
            positions.account_data[room_id] = window.upto_aux
        return {"global": global_events, "rooms": by_room}

    # --- receipts and typing ----------------------------------------------------------------------------------

    async def _receipts_of(self, requester: Requester, room_ids: list[str], window: Window,
                           rooms: dict[str, BuiltRoom], positions: ExtensionPositions) -> dict[str, Any]:
        user_id = requester.user_id
        initial = [r for r in room_ids if r not in positions.receipts or (r in rooms and rooms[r].body.get("initial"))]
        by_since: dict[int, list[str]] = {}
        for room_id in room_ids:
            if room_id not in initial:
                by_since.setdefault(positions.receipts[room_id], []).append(room_id)
        out: dict[str, Any] = {}
        if initial:
            # A room new to the client: the receipts on the events it is sent, and the user's own.
            found = await self._receipts.ephemeral_events(user_id, initial, None, window.upto_aux)
            for room_id, event in found.items():
                shown = set(rooms[room_id].timeline_event_ids) if room_id in rooms else set()
                content = _receipts_on(event["content"], shown, user_id)
                if content:
                    out[room_id] = {"type": "m.receipt", "content": content}
        for since, group in by_since.items():
            out.update(await self._receipts.ephemeral_events(user_id, group, since, window.upto_aux))
        for room_id in room_ids:
            positions.receipts[room_id] = window.upto_aux
        return out

    def _typing_of(self, room_ids: list[str], window: Window, rooms: dict[str, BuiltRoom]) -> dict[str, Any]:
        fresh = {r for r in room_ids if window.since_typing is None or (r in rooms and rooms[r].body.get("initial"))}
        rest = [r for r in room_ids if r not in fresh]
        out = self._typing.typing_events(sorted(fresh), None, window.upto_typing) if fresh else {}
        if rest:
            out.update(self._typing.typing_events(rest, window.since_typing, window.upto_typing))
        return out


def _receipts_on(content: dict[str, Any], event_ids: set[str], user_id: str) -> dict[str, Any]:
    """The part of an m.receipt content about `event_ids`, or by `user_id`."""
    kept: dict[str, Any] = {}
    for event_id, by_type in content.items():
        if event_id in event_ids:
            kept[event_id] = by_type
            continue
        mine = {t: {user_id: users[user_id]} for t, users in by_type.items() if user_id in users}
        if mine:
            kept[event_id] = mine
    return kept
