"""Spaces: the tree of rooms under a space (GET /hierarchy, for clients and for other servers)
and the summary of one room (GET /room_summary).

A space lists its children in `m.space.child` state events (with a non-empty `via`). The
client walk is depth-first in the spec's order (a valid `order` string first, then the child
event's timestamp, then the room ID); rooms this server is not in are asked of the servers in
`via` over federation. A room is shown to a user who could see or join it (joined or invited,
a public, knockable or world-readable room, or a restricted room whose allowed rooms the user
is in), and to a server that has a member in it (spec: "Spaces", server-server "Spaces").

Paging state is kept in the database (`next_batch` names a session kept for five minutes, as
Synapse keeps it), so the pages of one walk may be asked of different processes.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field
from typing import Any

from federation.client import FederationClient, FederationError
from homeserver.core.events import Event
from homeserver.core.ids import server_name_of
from homeserver.errors import Codes, MatrixError
from homeserver.services.clock import Clock
from homeserver.services.rooms.directory import DirectoryService
from homeserver.services.rooms.state import RoomSnapshot, RoomStateCache
from storage.events import EventStore
from storage.short_sessions import ShortSessionStore

MAX_LIMIT = 50            # rooms per page (Synapse's too)
MAX_DEPTH = 10            # levels below the root, at most
MAX_CHILDREN = 50         # children of one space followed
MAX_VIA = 3               # servers asked for one remote room
SESSION_LIFETIME_MS = 300_000
SESSION = "hierarchy"     # the paging sessions' kind in short_sessions

SUMMARY_KEYS = [("m.room.create", ""), ("m.room.name", ""), ("m.room.topic", ""), ("m.room.canonical_alias", ""),
                ("m.room.avatar", ""), ("m.room.join_rules", ""), ("m.room.guest_access", ""),
                ("m.room.history_visibility", ""), ("m.room.encryption", "")]


@dataclass
class _Queued:
    room_id: str
    via: list[str]
    depth: int
    remote: dict[str, Any] | None = None  # the room's summary, when a parent's server sent it


@dataclass
class _Session:
    key: tuple[str, str, bool, int | None]  # (user, root, suggested_only, max_depth)
    queue: list[_Queued]
    processed: set[str] = field(default_factory=set)

    def to_json(self) -> dict[str, Any]:
        return {"key": list(self.key), "queue": [asdict(q) for q in self.queue], "processed": sorted(self.processed)}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> _Session:
        user, root, suggested_only, max_depth = value["key"]
        return cls((user, root, suggested_only, max_depth), [_Queued(**q) for q in value["queue"]],
                   set(value["processed"]))


@dataclass
class _LocalRoom:
    summary: dict[str, Any]
    children: list[Event]
    join_rule: str
    allowed_rooms: list[str]
    world_readable: bool
    members: dict[str, str]


class HierarchyService:
    def __init__(self, rooms: RoomStateCache, store: EventStore, directory: DirectoryService,
                 federation: FederationClient | None, sessions: ShortSessionStore, clock: Clock,
                 server_name: str) -> None:
        self._rooms = rooms
        self._store = store
        self._directory = directory
        self._federation = federation
        self._sessions = sessions
        self._clock = clock
        self._server_name = server_name

    # --- use cases --------------------------------------------------------------------------

    async def hierarchy(self, user_id: str, room_id: str, *, suggested_only: bool, limit: int | None,
                        max_depth: int | None, from_token: str | None) -> dict[str, Any]:
        """GET /rooms/{roomId}/hierarchy: one page of the tree under `room_id`."""
        if limit is not None and limit < 1:
            raise MatrixError(400, Codes.INVALID_PARAM, "'limit' must be a positive integer")
        if max_depth is not None and max_depth < 0:
            raise MatrixError(400, Codes.INVALID_PARAM, "'max_depth' must be a non-negative integer")
        limit = min(limit or MAX_LIMIT, MAX_LIMIT)
        max_depth = min(max_depth, MAX_DEPTH) if max_depth is not None else MAX_DEPTH
        key = (user_id, room_id, suggested_only, max_depth)
        if from_token is not None:
            session = await self._take_session(from_token)
            if session is None or session.key != key:
                raise MatrixError(400, Codes.INVALID_PARAM, "Unknown pagination token")
        else:
            root = await self._local_room(room_id)
            if root is None or not await self._user_may_see(user_id, root):
                raise MatrixError(403, Codes.FORBIDDEN, f"{user_id} cannot see the room {room_id}")
            session = _Session(key, [_Queued(room_id, [], 0)])
        rooms: list[dict[str, Any]] = []
        while session.queue and len(rooms) < limit:
            queued = session.queue.pop()
            if queued.room_id in session.processed:
                continue
            session.processed.add(queued.room_id)
            summary, children = await self._visit(user_id, queued, suggested_only)
            if summary is None:
                continue
            rooms.append(summary)
            if queued.depth < max_depth:
                # Pushed in reverse so that the first child is walked next (depth first).
                for child in reversed(children):
                    child.depth = queued.depth + 1
                    session.queue.append(child)
        body: dict[str, Any] = {"rooms": rooms}
        if session.queue:
            body["next_batch"] = await self._keep_session(session)
        return body

    async def federation_hierarchy(self, origin: str, room_id: str, suggested_only: bool) -> dict[str, Any]:
        """GET /_matrix/federation/v1/hierarchy/{roomId}: the room and its direct children that
        `origin` may see (children this server is not in are left out)."""
        root = await self._local_room(room_id)
        if root is None or not await self._server_may_see(origin, root):
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown room")
        children, inaccessible = [], []
        for child in _child_events(root.children, suggested_only):
            local = await self._local_room(child.state_key)
            if local is None:
                continue
            if await self._server_may_see(origin, local):
                children.append(local.summary)
            else:
                inaccessible.append(child.state_key)
        return {"room": root.summary, "children": children, "inaccessible_children": inaccessible}

    async def summary(self, user_id: str | None, room_id_or_alias: str, via: list[str]) -> dict[str, Any]:
        """GET /room_summary/{roomIdOrAlias}: what a client shows before joining."""
        if room_id_or_alias.startswith("#"):
            resolved = await self._directory.resolve_alias(room_id_or_alias)
            room_id, via = resolved["room_id"], via or resolved.get("servers", [])
        elif room_id_or_alias.startswith("!"):
            room_id = room_id_or_alias
        else:
            raise MatrixError(400, Codes.INVALID_PARAM, "Expected a room ID or a room alias")
        local = await self._local_room(room_id)
        if local is not None:
            if not (await self._user_may_see(user_id, local) if user_id else _open(local)):
                raise MatrixError(404, Codes.NOT_FOUND, "Unknown room or not visible")
            summary = {k: v for k, v in local.summary.items() if k != "children_state"}
            membership = local.members.get(user_id) if user_id else None
        else:
            found = await self._remote(room_id, via, suggested_only=False)
            if found is None or not self._remote_visible(user_id, found[0], await self._rooms_of(user_id)):
                raise MatrixError(404, Codes.NOT_FOUND, "Unknown room or not visible")
            summary = {k: v for k, v in found[0].items() if k != "children_state"}
            membership = await self._membership_seen(user_id, room_id) if user_id else None
        if membership is not None:
            summary["membership"] = membership
        return summary

    # --- the walk ---------------------------------------------------------------------------

    async def _visit(self, user_id: str, queued: _Queued, suggested_only: bool,
                     ) -> tuple[dict[str, Any] | None, list[_Queued]]:
        """A room's summary for this user (None when not to be shown) and its children to walk."""
        local = await self._local_room(queued.room_id)
        if local is not None:
            if not await self._user_may_see(user_id, local):
                return None, []
            return local.summary, [_Queued(e.state_key, _via(e), 0) for e in _child_events(local.children,
                                                                                           suggested_only)]
        if queued.remote is not None and not queued.remote.get("children_state"):
            room, children = queued.remote, {}  # a leaf the parent's server described
        else:
            found = await self._remote(queued.room_id, queued.via, suggested_only)
            if found is None:
                return None, []
            room, children = found
        if not self._remote_visible(user_id, room, await self._rooms_of(user_id)):
            return None, []
        walk = []
        for state in _stripped_children(room, suggested_only):
            walk.append(_Queued(state["state_key"], state["content"]["via"], 0, children.get(state["state_key"])))
        return room, walk

    async def _remote(self, room_id: str, via: list[str], suggested_only: bool,
                      ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]] | None:
        """Ask the servers in `via` for a room's summary and its children's."""
        if self._federation is None:
            return None
        for server in [s for s in via if isinstance(s, str) and s != self._server_name][:MAX_VIA]:
            try:
                body = await self._federation.get_json(
                    server, f"/_matrix/federation/v1/hierarchy/{room_id}",
                    query={"suggested_only": "true" if suggested_only else "false"})
            except (FederationError, ValueError):
                continue
            room = body.get("room") if isinstance(body, dict) else None
            if not isinstance(room, dict) or room.get("room_id") != room_id:
                continue
            children = body.get("children") if isinstance(body.get("children"), list) else []
            return room, {c["room_id"]: c for c in children if isinstance(c, dict) and isinstance(c.get("room_id"), str)}
        return None

    # --- who may see what -------------------------------------------------------------------

    async def _user_may_see(self, user_id: str, room: _LocalRoom) -> bool:
        if _open(room) or room.members.get(user_id) in ("join", "invite"):
            return True
        if room.join_rule in ("restricted", "knock_restricted") and room.allowed_rooms:
            return bool(set(room.allowed_rooms) & await self._rooms_of(user_id))
        return False

    async def _server_may_see(self, origin: str, room: _LocalRoom) -> bool:
        if _open(room):
            return True
        if any(server_name_of(u) == origin and m in ("join", "invite") for u, m in room.members.items()):
            return True
        if room.join_rule in ("restricted", "knock_restricted"):
            for allowed in room.allowed_rooms:
                members = await self._store.members(allowed)
                if any(server_name_of(u) == origin and m == "join" for u, m in members.items()):
                    return True
        return False

    def _remote_visible(self, user_id: str | None, room: dict[str, Any], user_rooms: set[str]) -> bool:
        """A room another server described: shown when open, or restricted to rooms the user is in."""
        join_rule = room.get("join_rule")
        if join_rule in ("public", "knock", "knock_restricted") or room.get("world_readable") is True:
            return True
        allowed = room.get("allowed_room_ids")
        return join_rule == "restricted" and isinstance(allowed, list) and bool(set(allowed) & user_rooms)

    async def _rooms_of(self, user_id: str | None) -> set[str]:
        return set(await self._store.rooms_for_user(user_id, "join")) if user_id else set()

    async def _membership_seen(self, user_id: str, room_id: str) -> str | None:
        for membership in ("invite", "knock", "leave", "ban"):
            if room_id in await self._store.rooms_for_user(user_id, membership):
                return membership
        return None

    # --- local rooms ------------------------------------------------------------------------

    async def _local_room(self, room_id: str) -> _LocalRoom | None:
        """The room as this server sees it, when a user of this server is in it."""
        if not room_id.startswith("!"):
            return None
        snap = await self._rooms.snapshot(room_id)
        if snap is None:
            return None
        members = await self._store.members(room_id)
        if not any(m == "join" and server_name_of(u) == self._server_name for u, m in members.items()):
            return None
        return await self._describe(snap, members)

    async def _describe(self, snap: RoomSnapshot, members: dict[str, str]) -> _LocalRoom:
        child_keys = [k for k in snap.state if k[0] == "m.space.child"]
        state = await self._rooms.state_events(snap, SUMMARY_KEYS + child_keys)

        def content(event_type: str) -> dict[str, Any]:
            event = state.get((event_type, ""))
            return event.content if event is not None else {}

        join_rule = content("m.room.join_rules").get("join_rule")
        join_rule = join_rule if isinstance(join_rule, str) else "invite"
        allow = content("m.room.join_rules").get("allow")
        allowed_rooms = [a["room_id"] for a in allow if isinstance(a, dict) and a.get("type") == "m.room_membership"
                         and isinstance(a.get("room_id"), str)] if isinstance(allow, list) else []
        world_readable = content("m.room.history_visibility").get("history_visibility") == "world_readable"
        children = [e for k, e in state.items() if k[0] == "m.space.child" and _via(e)]
        summary: dict[str, Any] = {
            "room_id": snap.room_id,
            "num_joined_members": sum(1 for m in members.values() if m == "join"),
            "world_readable": world_readable,
            "guest_can_join": content("m.room.guest_access").get("guest_access") == "can_join",
            "join_rule": join_rule,
            "room_version": snap.version.identifier,
            "children_state": [{"type": e.type, "state_key": e.state_key, "content": e.content,
                                "sender": e.sender, "origin_server_ts": e.origin_server_ts}
                               for e in _child_events(children, False)],
        }
        for key, event_type, field_name in (("name", "m.room.name", "name"), ("topic", "m.room.topic", "topic"),
                                            ("canonical_alias", "m.room.canonical_alias", "alias"),
                                            ("avatar_url", "m.room.avatar", "url"),
                                            ("room_type", "m.room.create", "type"),
                                            ("encryption", "m.room.encryption", "algorithm")):
            value = content(event_type).get(field_name)
            if isinstance(value, str):
                summary[key] = value
        if join_rule in ("restricted", "knock_restricted"):
            summary["allowed_room_ids"] = allowed_rooms
        return _LocalRoom(summary, children, join_rule, allowed_rooms, world_readable, members)

    # --- paging sessions --------------------------------------------------------------------

    async def _keep_session(self, session: _Session) -> str:
        token = secrets.token_urlsafe(16)
        now = self._clock.now_ms()
        await self._sessions.put(SESSION, token, session.to_json(), now + SESSION_LIFETIME_MS, now_ts=now)
        return token

    async def _take_session(self, token: str) -> _Session | None:
        value = await self._sessions.take(SESSION, token, self._clock.now_ms())
        return _Session.from_json(value) if value is not None else None


def _open(room: _LocalRoom) -> bool:
    return room.join_rule in ("public", "knock", "knock_restricted") or room.world_readable


def _via(event: Event) -> list[str]:
    via = event.content.get("via")
    return [s for s in via if isinstance(s, str)] if isinstance(via, list) else []


def _order_key(order: Any, ts: int, room_id: str) -> tuple[bool, str, int, str]:
    valid = isinstance(order, str) and len(order) <= 50 and all(0x20 <= ord(c) <= 0x7E for c in order)
    return (not valid, order if valid else "", ts, room_id)


def _child_events(children: list[Event], suggested_only: bool) -> list[Event]:
    """A space's children in the spec's order, at most MAX_CHILDREN."""
    chosen = [e for e in children if _via(e) and (not suggested_only or e.content.get("suggested") is True)]
    chosen.sort(key=lambda e: _order_key(e.content.get("order"), e.origin_server_ts, e.state_key or ""))
    return chosen[:MAX_CHILDREN]


def _stripped_children(room: dict[str, Any], suggested_only: bool) -> list[dict[str, Any]]:
    """The usable children_state entries of a room another server described, in order."""
    found = []
    for state in room.get("children_state") or []:
        if not (isinstance(state, dict) and state.get("type") == "m.space.child"
                and isinstance(state.get("state_key"), str) and isinstance(state.get("content"), dict)):
            continue
        via = state["content"].get("via")
        if not (isinstance(via, list) and via and all(isinstance(s, str) for s in via)):
            continue
        if suggested_only and state["content"].get("suggested") is not True:
            continue
        found.append(state)
    ts = lambda s: s.get("origin_server_ts") if isinstance(s.get("origin_server_ts"), int) else 0  # noqa: E731
    found.sort(key=lambda s: _order_key(s["content"].get("order"), ts(s), s["state_key"]))
    return found[:MAX_CHILDREN]
