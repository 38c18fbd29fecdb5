"""Membership: join, leave, invite, kick, ban, unban, knock — each one m.room.member event.

Whether a change is allowed is decided by the room version's auth rules on the event itself
(403 M_FORBIDDEN otherwise); this service only checks what the rules cannot see (the room
exists here, the target is a valid user ID) and fills in the member event's content.
In a room no local user is joined to, a join, knock, or the rejection of an invite goes
through another server (`RemoteMembership`); an invite of another server's user carries
that server's signature.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from homeserver.core.events import Event
from homeserver.core.ids import is_valid_user_id, server_name_of
from homeserver.errors import Codes, MatrixError
from homeserver.services.ratelimit import RateLimiter
from homeserver.services.rooms.events import EventService
from homeserver.services.rooms.profile_lookup import ProfileLookup
from homeserver.services.rooms.restricted_joins import RestrictedJoins
from homeserver.services.rooms.state import RoomStateCache
from storage.events import EventStore
from storage.rooms import RoomStore

MAX_REASON_LENGTH = 1024
BLOCKED_ROOM = "This room has been blocked on this server"
# Keys of a join request's body that are request parameters or the server's to set, never
# copied into the member event's content.
RESERVED_JOIN_KEYS = frozenset({"membership", "reason", "third_party_signed", "join_authorised_via_users_server"})


class RemoteMembership(Protocol):
    """Membership through other servers, as `services.federation.membership.FederationMembership`
    does it. Declared here so that rooms/ stays under federation/ (the wiring passes it in)."""

    async def is_resident(self, room_id: str) -> bool: ...

    async def join(self, user_id: str, room_id: str, servers: Sequence[str], content: dict[str, Any]) -> str: ...

    async def leave(self, user_id: str, room_id: str, servers: Sequence[str], content: dict[str, Any]) -> str: ...

    async def knock(self, user_id: str, room_id: str, servers: Sequence[str], content: dict[str, Any]) -> str: ...

    async def countersign_invite(self, event: Event, invite_room_state: list[dict[str, Any]]) -> Event: ...

    async def room_state_pdus(self, room_id: str, *, also: list[tuple[str, str]] = ()) -> list[dict[str, Any]]: ...


class MembershipService:
    def __init__(self, events: EventService, rooms: RoomStateCache, profiles: ProfileLookup, room_store: RoomStore,
                 event_store: EventStore, restricted: RestrictedJoins, remote: RemoteMembership,
                 server_name: str, *, limiter: RateLimiter) -> None:
        self._events = events
        self._limiter = limiter
        self._room_store = room_store
        self._event_store = event_store
        self._server_name = server_name
        self._rooms = rooms
        self._profiles = profiles
        self._restricted = restricted
        self._remote = remote
        self._join_listeners: list[Callable[[str, str], Awaitable[None]]] = []
        self._rejection_guards: list[Callable[[str, str], Awaitable[None]]] = []

    def on_join(self, listener: Callable[[str, str], Awaitable[None]]) -> None:
        """Call `listener(user_id, room_id)` after a local user joined a room (a room upgrade
        carries the user's own state about the old room over)."""
        self._join_listeners.append(listener)

    def guard_invite_rejections(self, guard: Callable[[str, str], Awaitable[None]]) -> None:
        """Call `guard(user_id, room_id)` before a user rejects an invite to a room held here;
        it raises to refuse (a server notices room's invite cannot be rejected, as Synapse)."""
        self._rejection_guards.append(guard)

    async def _joined(self, user_id: str, room_id: str) -> None:
        for listener in self._join_listeners:
            await listener(user_id, room_id)

    async def join(self, user_id: str, room_id: str, reason: str | None = None, *, is_guest: bool = False,
                   servers: list[str] = (), extra_content: dict[str, Any] | None = None,
                   ratelimited: bool = True) -> str:
        """`extra_content`: other keys for the member event's content (POST /join/{roomIdOrAlias}
        takes its whole body as content, as Synapse does); the server's own keys win.
        A user not yet in the room is limited by rc_joins and rc_joins_per_room (as Synapse;
        `ratelimited=False` for the server's own joins)."""
        extra = {k: v for k, v in (extra_content or {}).items() if k not in RESERVED_JOIN_KEYS}
        await self.check_not_blocked(room_id)
        snap = await self._rooms.snapshot(room_id)
        if snap is None or not await self._remote.is_resident(room_id):
            if is_guest:
                raise MatrixError(403, Codes.GUEST_ACCESS_FORBIDDEN, "Guests cannot join rooms on other servers")
            await self._events.check_not_suspended(user_id, "m.room.member", {"membership": "join"})
            if ratelimited:
                await self._limiter.check_join(user_id, room_id, remote=True)
            content = {**extra, "membership": "join", **await self._profiles.member_profile(user_id)}
            _add_reason(content, reason)
            event_id = await self._remote.join(user_id, room_id, await self._servers_for(room_id, user_id, servers),
                                               content)
            self._limiter.joined(room_id)
            await self._room_store.unforget(user_id, room_id)
            await self._joined(user_id, room_id)
            return event_id
        if is_guest:
            # Spec (Guest access, server behaviour): only rooms whose guest_access is can_join.
            access = (await self._rooms.state_events(snap, [("m.room.guest_access", "")])).get(("m.room.guest_access", ""))
            if access is None or access.content.get("guest_access") != "can_join":
                raise MatrixError(403, Codes.GUEST_ACCESS_FORBIDDEN, "Guest access is not allowed in this room")
        joining = await self._membership_of(snap, user_id) != "join"
        if joining and ratelimited:  # a joined user's new profile is not a join (as Synapse)
            await self._limiter.check_join(user_id, room_id, remote=False)
        content: dict[str, Any] = {**extra, "membership": "join"}
        content.update(await self._profiles.member_profile(user_id))
        authoriser = await self._restricted.authoriser(snap, user_id)
        if authoriser is not None:
            content["join_authorised_via_users_server"] = authoriser
        event_id = await self._change(user_id, room_id, user_id, content, reason)
        if joining:
            self._limiter.joined(room_id)
        await self._room_store.unforget(user_id, room_id)
        await self._joined(user_id, room_id)
        return event_id

    async def leave(self, user_id: str, room_id: str, reason: str | None = None) -> str:
        await self._require_room(room_id)
        if self._rejection_guards and await self.membership_of(room_id, user_id) == "invite":
            for guard in self._rejection_guards:
                await guard(user_id, room_id)
        if not await self._remote.is_resident(room_id):
            # An invite or a knock in a room we are not in: rejected through another server.
            mine = await self._event_store.latest_membership(room_id, user_id)
            if mine is None or mine[2] not in ("invite", "knock"):
                raise MatrixError(403, Codes.FORBIDDEN, "You are not in this room")
            if mine[2] == "invite" and server_name_of(mine[1]) == self._server_name \
                    and await self._rooms.snapshot(room_id) is not None:
                # Invited by one of ours into a room held here that everyone left: there is
                # nobody to ask, the rejection is ours to write (as Synapse does).
                return await self._change(user_id, room_id, user_id, {"membership": "leave"}, reason)
            content: dict[str, Any] = {"membership": "leave"}
            _add_reason(content, reason)
            return await self._remote.leave(user_id, room_id, await self._servers_for(room_id, user_id, []), content)
        return await self._change(user_id, room_id, user_id, {"membership": "leave"}, reason)

    async def invite(self, sender: str, room_id: str, target: str, reason: str | None = None, *,
                     ratelimited: bool = True, third_party_invite: dict[str, Any] | None = None) -> str:
        """Limited per room, per invitee and per inviter (rc_invites), as Synapse.
        `third_party_invite`: the identity server's signed token when the invite fulfils an
        m.room.third_party_invite (the auth rules check it)."""
        await self._require_room(room_id)
        _check_target(target)
        await self.check_not_blocked(room_id)
        if ratelimited:
            await self._limiter.check_invite(room_id, target, sender)
        content: dict[str, Any] = {"membership": "invite"}
        if third_party_invite is not None:
            content["third_party_invite"] = third_party_invite
        content.update(await self._profiles.member_profile(target))
        if server_name_of(target) == self._server_name:
            return await self._change(sender, room_id, target, content, reason)
        room_state = await self._remote.room_state_pdus(room_id, also=[("m.room.member", sender)])

        async def countersign(event):
            return await self._remote.countersign_invite(event, room_state)
        return await self._change(sender, room_id, target, content, reason, countersign=countersign)

    async def kick(self, sender: str, room_id: str, target: str, reason: str | None = None) -> str:
        snap = await self._require_room(room_id)
        _check_target(target)
        current = snap.state.get(("m.room.member", target))
        membership = await self._membership_of(snap, target) if current else None
        if membership not in ("join", "invite", "knock"):
            raise MatrixError(403, Codes.FORBIDDEN, f"{target} is not in the room")
        return await self._change(sender, room_id, target, {"membership": "leave"}, reason)

    async def ban(self, sender: str, room_id: str, target: str, reason: str | None = None) -> str:
        await self._require_room(room_id)
        _check_target(target)
        return await self._change(sender, room_id, target, {"membership": "ban"}, reason)

    async def unban(self, sender: str, room_id: str, target: str, reason: str | None = None) -> str:
        snap = await self._require_room(room_id)
        _check_target(target)
        if await self._membership_of(snap, target) != "ban":
            raise MatrixError(403, Codes.FORBIDDEN, f"{target} is not banned")
        return await self._change(sender, room_id, target, {"membership": "leave"}, reason)

    async def knock(self, user_id: str, room_id: str, reason: str | None = None, *, servers: list[str] = ()) -> str:
        await self.check_not_blocked(room_id)
        snap = await self._rooms.snapshot(room_id)
        if snap is None or not await self._remote.is_resident(room_id):
            await self._events.check_not_suspended(user_id, "m.room.member", {"membership": "knock"})
            content = {"membership": "knock", **await self._profiles.member_profile(user_id)}
            _add_reason(content, reason)
            return await self._remote.knock(user_id, room_id, await self._servers_for(room_id, user_id, servers),
                                            content)
        if not snap.version.auth.knock_join_rule:
            raise MatrixError(403, Codes.FORBIDDEN, f"Room version {snap.version.identifier} does not support knocking")
        content: dict[str, Any] = {"membership": "knock"}
        content.update(await self._profiles.member_profile(user_id))
        return await self._change(user_id, room_id, user_id, content, reason)

    async def leave_all_rooms(self, user_id: str) -> None:
        for membership in ("join", "invite", "knock"):
            for room_id in await self._event_store.rooms_for_user(user_id, membership):
                try:
                    await self._events.send(room_id, user_id, "m.room.member", {"membership": "leave"}, state_key=user_id)
                except MatrixError:
                    pass  # e.g. the room refuses the leave; the account is deactivated regardless

    async def remove_guests(self, room_id: str, guests: list[str]) -> None:
        """guest_access stopped being can_join: guests must leave (spec: Guest access)."""
        for guest in guests:
            try:
                await self._events.send(room_id, guest, "m.room.member", {"membership": "leave"}, state_key=guest)
            except MatrixError:
                pass  # already gone

    async def forget(self, user_id: str, room_id: str) -> None:
        """Spec: a user may forget a room they are not in (left, kicked or banned)."""
        snap = await self._require_room(room_id)
        membership = await self._membership_of(snap, user_id)
        if membership is None:
            raise MatrixError(404, Codes.NOT_FOUND, "You have never been in this room")
        if membership in ("join", "invite", "knock"):
            raise MatrixError(400, Codes.UNKNOWN, "You must leave the room before forgetting it")
        await self._room_store.forget(user_id, room_id)

    async def check_not_blocked(self, room_id: str) -> None:
        """A room a server admin blocked takes no joins, invites or knocks (as Synapse: 403)."""
        if await self._room_store.blocked_by(room_id) is not None:
            raise MatrixError(403, Codes.FORBIDDEN, BLOCKED_ROOM)

    async def membership_of(self, room_id: str, user_id: str) -> str | None:
        snap = await self._rooms.snapshot(room_id)
        return await self._membership_of(snap, user_id) if snap else None

    # --- internals ---------------------------------------------------------------------------

    async def _require_room(self, room_id: str):
        snap = await self._rooms.snapshot(room_id)
        if snap is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown room")
        return snap

    async def _membership_of(self, snap, user_id: str) -> str | None:
        events = await self._rooms.state_events(snap, [("m.room.member", user_id)])
        event = events.get(("m.room.member", user_id))
        return event.content.get("membership") if event else None

    async def _change(self, sender: str, room_id: str, target: str, content: dict[str, Any], reason: str | None,
                      countersign=None) -> str:
        _add_reason(content, reason)
        # The same sender setting the same content again (joining twice, say) changes
        # nothing: no new event, the current one's ID (as Synapse answers).
        snap = await self._rooms.snapshot(room_id)
        if snap is not None:
            current = (await self._rooms.state_events(snap, [("m.room.member", target)])).get(("m.room.member", target))
            if current is not None and current.sender == sender and current.content == content:
                return current.event_id
        event = await self._events.send(room_id, sender, "m.room.member", content, state_key=target,
                                        countersign=countersign)
        return event.event_id

    async def _servers_for(self, room_id: str, user_id: str, given: list[str]) -> list[str]:
        """Where to reach a room we are not in: the servers the client named, the server of
        whoever invited us, and (room IDs before v12) the room's original server."""
        servers = [s for s in given if isinstance(s, str)]
        mine = await self._event_store.latest_membership(room_id, user_id)
        if mine is not None and (inviter := server_name_of(mine[1])):
            servers.append(inviter)
        if ":" in room_id and (origin := server_name_of(room_id)):
            servers.append(origin)
        return list(dict.fromkeys(servers))


def _add_reason(content: dict[str, Any], reason: Any) -> None:
    if reason is not None:
        if not isinstance(reason, str):
            raise MatrixError(400, Codes.BAD_JSON, "'reason' must be a string")
        if len(reason) > MAX_REASON_LENGTH:
            raise MatrixError(400, Codes.TOO_LARGE, "'reason' is too long")
        content["reason"] = reason


def _check_target(user_id: Any) -> None:
    if not isinstance(user_id, str) or not is_valid_user_id(user_id):
        raise MatrixError(400, Codes.INVALID_PARAM, "'user_id' must be a valid user ID")
