"""Membership across servers: joins, leaves, knocks and invites that another server must take
part in, in both roles (https://spec.matrix.org/v1.19/server-server-api/#joining-rooms and the
sections after it).

As the joining (leaving, knocking) server: ask a resident server for a template
(make_join/make_leave/make_knock), fill it in and sign it, hand it back (send_*), and store what
comes back: for a join, the room's state and auth chain (as outliers) and the join event
itself, which starts our copy of the room. As the resident server: offer templates built on
the current state, and take the signed event through the ordinary intake, then relay it (the
send_join answer, state and auth chain, is join_answers.py's, beside this module).

Invites: a local user inviting another server's user needs that server's signature on the
event before we store it; another server inviting a local user gets our signature and the
invite is kept, with the stripped state it came with, for /sync.

Invariants: a template is only offered when the auth rules would accept the event now; a
received membership event must be the one the template promised (type, membership, sender of
the origin server); rooms we are not in hold only such out-of-band membership events (outliers
with a stream position), never a current state.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from federation.client import FederationClient, FederationError, RemoteError, client_error, is_unknown_endpoint, path
from federation.keys import Keyring
from homeserver.core.builder import build_event, complete_event, template_of
from homeserver.core.events import STRIPPED_STATE_TYPES, Event, InvalidEvent, parse_pdu
from homeserver.core.ids import server_name_of
from homeserver.core.redaction import redact
from homeserver.core.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion, get_room_version
from homeserver.core.signing import InvalidSignature, sign_event
from homeserver.errors import Codes, MatrixError
from homeserver.services.clock import Clock
from homeserver.services.federation.intake import FederationIntake, IntakeError
from homeserver.services.federation.pdu_checks import InvalidPduFormat, PduChecker, PduDropped
from homeserver.services.federation.remote_state import plan_group
from homeserver.services.ratelimit import Action, RateLimiter
from homeserver.services.rooms.event_rows import event_row, membership_row
from homeserver.services.rooms.events import EventService
from homeserver.services.rooms.membership import BLOCKED_ROOM
from homeserver.services.rooms.partial_state import PartialStateRooms
from homeserver.services.rooms.restricted_joins import RestrictedJoins
from homeserver.services.rooms.state import RoomSnapshot, RoomStateCache
from storage.event_graph import EventGraphQueries
from storage.events import EventStore, PersistBatch
from storage.federation_rooms import FederationRoomStore
from storage.rooms import RoomStore

logger = logging.getLogger(__name__)

Relay = Callable[[list[Event], Iterable[str]], Awaitable[None]]
MEMBERSHIP_API = {"join": ("make_join", "v2/send_join"), "leave": ("make_leave", "v2/send_leave"),
                  "knock": ("make_knock", "v1/send_knock")}


class FederationMembership:
    def __init__(self, events: EventService, rooms: RoomStateCache, intake: FederationIntake, checker: PduChecker,
                 event_store: EventStore, room_store: RoomStore,
                 graph: EventGraphQueries, joined_servers: Callable[[str], Awaitable[set[str]]],
                 federation_rooms: FederationRoomStore,
                 restricted: RestrictedJoins,
                 client: FederationClient, keyring: Keyring, clock: Clock, server_name: str, signing_key: Any,
                 relay: Relay | None = None, *, limiter: RateLimiter,
                 partial_state: PartialStateRooms | None = None,
                 on_partial_join: Callable[[str], None] | None = None, faster_joins: bool = False) -> None:
        # The rooms joined with a partial state and the resync that completes them; with
        # `faster_joins`, our joins ask for the state without its members.
        self._partial = partial_state
        self._on_partial_join = on_partial_join
        self._faster_joins = faster_joins and partial_state is not None and on_partial_join is not None
        self._limiter = limiter
        self._events = events
        self._rooms = rooms
        self._intake = intake
        self._checker = checker
        self._event_store = event_store
        self._room_store = room_store
        self._graph = graph
        self._joined_servers = joined_servers
        self._store = federation_rooms
        self._restricted = restricted
        self._client = client
        self._keyring = keyring
        self._clock = clock
        self.server_name = server_name
        self._signing_key = signing_key
        self._relay = relay

    async def is_resident(self, room_id: str) -> bool:
        """Whether a local user is joined: we hold the room's live copy and may act in it."""
        return self.server_name in await self._joined_servers(room_id)

    # --- as the joining / leaving / knocking server -------------------------------------------

    async def join(self, user_id: str, room_id: str, servers: Sequence[str], content: dict[str, Any]) -> str:
        """Join a room another server holds; returns the join event ID."""
        template, version, server = await self._make(user_id, room_id, servers, "join")
        event = self._complete(template, version, user_id, content, "join")
        faster = self._faster_joins
        body = await self._send(server, room_id, event, "join", query={"omit_members": "true"} if faster else None)
        if await self._store_join(server, version, room_id, event, body, partial_allowed=faster):
            self._on_partial_join(room_id)
        return event.event_id

    async def leave(self, user_id: str, room_id: str, servers: Sequence[str], content: dict[str, Any]) -> str:
        """Reject an invite, or withdraw a knock, in a room we are not in. When no server of
        the room takes the leave (unreachable, or refusing), it is recorded here only, as
        Synapse does: the user is rid of the invite, and the room's servers never hear of it."""
        try:
            template, version, server = await self._make(user_id, room_id, servers, "leave")
            event = self._complete(template, version, user_id, content, "leave")
            await self._send(server, room_id, event, "leave")
        except MatrixError as err:
            logger.info("the leave of %s from %s went to no server (%s): recorded here only", user_id, room_id, err)
            event, version = await self._local_leave(user_id, room_id, content, err)
        await self.store_out_of_band(event, version, None)
        return event.event_id

    async def _local_leave(self, user_id: str, room_id: str, content: dict[str, Any],
                           err: MatrixError) -> tuple[Event, RoomVersion]:
        """A leave of ours built on the user's invite (or knock) alone: an out-of-band event."""
        mine = await self._event_store.latest_membership(room_id, user_id)
        room = await self._room_store.get_room(room_id)
        if mine is None or room is None or room.room_version not in KNOWN_ROOM_VERSIONS:
            raise err
        version = get_room_version(room.room_version)
        previous = (await self._rooms.events.get_many([mine[0]], version)).get(mine[0])
        if previous is None:
            raise err
        event = build_event(
            version, room_id=room_id, sender=user_id, event_type="m.room.member",
            content={**content, "membership": "leave"}, state_key=user_id, prev_events=[previous.event_id],
            auth_events=[previous.event_id], depth=previous.depth + 1, origin_server_ts=self._clock.now_ms(),
            server_name=self.server_name, signing_key=self._signing_key,
            hashes_of={previous.event_id: previous.pdu.get("hashes", {})})
        return event, version

    async def knock(self, user_id: str, room_id: str, servers: Sequence[str], content: dict[str, Any]) -> str:
        template, version, server = await self._make(user_id, room_id, servers, "knock")
        event = self._complete(template, version, user_id, content, "knock")
        body = await self._send(server, room_id, event, "knock")
        stripped = body.get("knock_room_state") if isinstance(body, dict) else None
        await self.store_out_of_band(event, version, to_stripped(stripped))
        return event.event_id

    async def _make(self, user_id: str, room_id: str, servers: Sequence[str],
                    membership: str) -> tuple[dict[str, Any], RoomVersion, str]:
        candidates = [s for s in dict.fromkeys(servers) if s != self.server_name]
        if not candidates:
            raise MatrixError(404, Codes.NOT_FOUND, "No known servers to reach this room through")
        make, _ = MEMBERSHIP_API[membership]
        last: MatrixError | None = None
        for server in candidates:
            try:
                body = await self._client.get_json(
                    server, path(f"/_matrix/federation/v1/{make}/{{}}/{{}}", room_id, user_id),
                    query={"ver": list(KNOWN_ROOM_VERSIONS)} if membership != "leave" else None)
            except RemoteError as err:
                if err.errcode == Codes.INCOMPATIBLE_ROOM_VERSION:
                    # The client is told which version it was (the resident server's answer).
                    version = err.body.get("room_version") if isinstance(err.body, dict) else None
                    extra = {"room_version": version} if isinstance(version, str) else {}
                    raise MatrixError(400, Codes.INCOMPATIBLE_ROOM_VERSION, err.error or "Incompatible room version",
                                      **extra) from None
                last = err.to_matrix_error()
                continue
            except FederationError as err:
                last = client_error(err)
                continue
            template = body.get("event") if isinstance(body, dict) else None
            version_id = body.get("room_version", "1") if isinstance(body, dict) else None
            if not isinstance(template, dict) or version_id not in KNOWN_ROOM_VERSIONS:
                last = MatrixError(502, Codes.UNKNOWN, f"{server} sent an unusable {make} answer")
                continue
            return template, get_room_version(version_id), server
        assert last is not None
        raise last

    def _complete(self, template: dict[str, Any], version: RoomVersion, user_id: str, content: dict[str, Any],
                  membership: str) -> Event:
        if template.get("type") != "m.room.member" or template.get("sender") != user_id \
                or template.get("state_key") != user_id:
            raise MatrixError(502, Codes.UNKNOWN, "The resident server sent a template for someone else")
        offered = template.get("content") if isinstance(template.get("content"), dict) else {}
        filled = {**content, "membership": membership}
        # A restricted join names the resident user who authorises it; keep what was offered.
        if "join_authorised_via_users_server" in offered:
            filled["join_authorised_via_users_server"] = offered["join_authorised_via_users_server"]
        try:
            return complete_event(version, {**template, "content": filled}, server_name=self.server_name,
                                  signing_key=self._signing_key, origin_server_ts=self._clock.now_ms())
        except InvalidEvent as err:
            raise MatrixError(502, Codes.UNKNOWN, f"The resident server sent an invalid template: {err}") from None

    async def _send(self, server: str, room_id: str, event: Event, membership: str,
                    query: dict[str, str] | None = None) -> Any:
        _, send = MEMBERSHIP_API[membership]
        try:
            return await self._client.put_json(
                server, path(f"/_matrix/federation/{send}/{{}}/{{}}", room_id, event.event_id), event.pdu,
                query=query, timeout_ms=120_000)
        except FederationError as err:
            if membership not in ("join", "leave") or not is_unknown_endpoint(err):
                raise client_error(err) from None
        # A server without the v2 endpoint (older ones, as Synapse allows for): the deprecated
        # v1 form, whose answer is wrapped as [200, answer].
        try:
            body = await self._client.put_json(
                server, path(f"/_matrix/federation/v1/send_{membership}/{{}}/{{}}", room_id, event.event_id),
                event.pdu, timeout_ms=120_000)
        except FederationError as err:
            raise client_error(err) from None
        return unwrap_v1_answer(server, body)

    async def _store_join(self, server: str, version: RoomVersion, room_id: str, event: Event, body: Any, *,
                          partial_allowed: bool = False) -> bool:
        """Start our copy of the room from a send_join answer: the state before the join and
        its auth chain as outliers, then the join event with that state. Returns whether the
        state is partial (the answer left the members out: the room is then recorded as
        partial-state, with the servers the answer named, for the resync to complete)."""
        if not isinstance(body, dict) or not isinstance(body.get("state"), list) \
                or not isinstance(body.get("auth_chain"), list):
            raise MatrixError(502, Codes.UNKNOWN, f"{server} sent a malformed send_join answer")
        partial_servers: list[str] | None = None
        if partial_allowed and body.get("members_omitted") is True:
            named = body.get("servers_in_room")
            named = [s for s in named if isinstance(s, str)] if isinstance(named, list) else []
            # The server that answered first: it holds the full state for sure.
            partial_servers = [s for s in dict.fromkeys([server, *named]) if s != self.server_name]
        signed = body.get("event")
        if isinstance(signed, dict):  # a restricted join, countersigned by the authorising server
            try:
                candidate = parse_pdu(signed, version)
                if candidate.event_id == event.event_id:
                    event = candidate
            except InvalidEvent:
                pass
        checked = await self._checker.check_pdus([*body["auth_chain"], *body["state"]], version, server,
                                                 expected_room_id=room_id)
        good = {c.event.event_id: c.event for c in checked if not isinstance(c, PduDropped)}
        state = {}
        for pdu in body["state"]:
            found = good.get(_event_id_of(pdu, version) or "")
            if found is not None and found.state_key is not None:
                state[(found.type, found.state_key)] = found.event_id
        async with self._events.room_lock(room_id):
            await self._intake.store_outliers(room_id, version, good.values())
            # State events that fail against their own auth events are no part of the room.
            rejected = await self._graph.rejected_among(list(state.values()))
            state = {k: v for k, v in state.items() if v not in rejected}
            if ("m.room.create", "") not in state:
                raise MatrixError(502, Codes.UNKNOWN, f"{server} sent a room state without its create event")
            verdict = await self._intake.check(version, event, state, partial=partial_servers is not None)
            if not verdict.accepted:
                raise MatrixError(502, Codes.UNKNOWN, f"{server} sent a state our join does not pass: {verdict.reason}")
            await self._persist_join(version, room_id, event, state, partial_servers)
        return partial_servers is not None

    async def _persist_join(self, version: RoomVersion, room_id: str, event: Event,
                            before: dict[tuple[str, str], str], partial_servers: list[str] | None = None) -> None:
        old = await self._rooms.snapshot(room_id)
        create_id = before[("m.room.create", "")]
        creator = (await self._rooms.events.get_many([create_id], version))[create_id].sender
        after = {**before, (event.type, event.state_key or ""): event.event_id}
        state_events = await self._rooms.events.get_many(after.values(), version)
        state_events[event.event_id] = event
        self._rooms.events.put(event)
        new_snapshot: RoomSnapshot | None = None

        def build(positions: list[int], group_ids: list[int]) -> tuple[PersistBatch, list[Event]]:
            nonlocal new_snapshot
            before_group, _ = plan_group(group_ids[0], before, None, None, 0)
            after_group, chain = plan_group(group_ids[1], after, before_group.id, before, 0)
            members = [membership_row(event, positions[0])]
            members += [membership_row(e, positions[0]) for e in state_events.values()
                        if e.type == "m.room.member" and e.event_id != event.event_id and e.membership]
            batch = PersistBatch(
                room_id=room_id,
                events=[event_row(event, positions[0], self._clock.now_ms(), before_group.id, after_group.id)],
                state_groups=[before_group, after_group],
                extremities_removed=list(old.extremities) if old else [],
                extremities_added=[event.event_id],
                current_state={k: (v, state_events[v].membership if k[0] == "m.room.member" else None)
                               for k, v in after.items() if v in state_events},
                memberships=members,
                current_state_group=after_group.id,
            )
            new_snapshot = RoomSnapshot(room_id, version, after_group.id, chain, after, {event.event_id: event.depth})
            return batch, [event]

        partial_row = None

        async def create_room_row() -> None:
            nonlocal partial_row
            await self._room_store.create_room(room_id, version.identifier, creator, self._clock.now_ms())
            if partial_servers is not None and self._partial is not None:
                partial_row = await self._partial.mark(room_id, event.event_id, partial_servers)

        await self._events.store(build, 1, 2, snapshot=lambda: new_snapshot, before_persist=create_room_row)
        if partial_row is not None:
            await self._partial.marked(partial_row)

    # --- invites ------------------------------------------------------------------------------

    async def countersign_invite(self, event: Event, invite_room_state: list[dict[str, Any]]) -> Event:
        """Ask the invitee's server to sign an invite of its user (PUT /v2/invite)."""
        target_server = server_name_of(event.state_key or "")
        body = await self._send_invite(target_server, event, invite_room_state)
        signed = body.get("event") if isinstance(body, dict) else None
        try:
            returned = parse_pdu(signed, event.room_version) if isinstance(signed, dict) else None
        except InvalidEvent as err:  # e.g. a float or an out-of-range integer in it
            raise MatrixError(400, Codes.BAD_JSON, f"{target_server} returned an invalid invite event: {err}") from None
        if returned is None or returned.event_id != event.event_id:
            raise MatrixError(502, Codes.UNKNOWN, f"{target_server} did not return the invite event")
        try:
            minimum = event.origin_server_ts if event.room_version.signatures.enforce_key_validity else 0
            await self._keyring.verify_json_for_server(target_server, redact(returned.pdu, event.room_version),
                                                       minimum)
        except InvalidSignature as err:
            raise MatrixError(502, Codes.UNKNOWN, f"{target_server} did not sign the invite: {err}") from None
        # Our own signature must still be there: keep our signatures, add theirs.
        signatures = {**returned.pdu.get("signatures", {}), **event.pdu.get("signatures", {})}
        return parse_pdu({**event.pdu, "signatures": signatures}, event.room_version)

    async def _send_invite(self, target_server: str, event: Event, invite_room_state: list[dict[str, Any]]) -> Any:
        try:
            return await self._client.put_json(
                target_server, path("/_matrix/federation/v2/invite/{}/{}", event.room_id, event.event_id),
                {"room_version": event.room_version.identifier, "event": event.pdu,
                 "invite_room_state": invite_room_state})
        except FederationError as err:
            # The v1 endpoint carries no room version: only rooms of versions 1 and 2 (whose
            # event format it assumes, spec invites-v1.yaml) may fall back to it.
            if not is_unknown_endpoint(err):
                raise client_error(err) from None
            if event.room_version.identifier not in ("1", "2"):
                raise MatrixError(400, Codes.INCOMPATIBLE_ROOM_VERSION,
                                  f"{target_server} does not support this room's version",
                                  room_version=event.room_version.identifier) from None
        unsigned = {**event.pdu.get("unsigned", {}), "invite_room_state": invite_room_state}
        try:
            body = await self._client.put_json(
                target_server, path("/_matrix/federation/v1/invite/{}/{}", event.room_id, event.event_id),
                {**event.pdu, "unsigned": unsigned})
        except FederationError as err:
            raise client_error(err) from None
        return unwrap_v1_answer(target_server, body)

    async def room_state_pdus(self, room_id: str, *, also: list[tuple[str, str]] = ()) -> list[dict[str, Any]]:
        """The state that helps an invitee or knocker recognise the room, as `invite_room_state`
        and `knock_room_state` carry it since v1.16: full PDUs, the create event always among them."""
        snap = await self._rooms.snapshot(room_id)
        if snap is None:
            return []
        events = await self._rooms.state_events(snap, [*((t, "") for t in STRIPPED_STATE_TYPES), *also])
        return [e.pdu for e in events.values()]

    async def on_invite(self, origin: str, room_id: str, event_id: str, body: Any) -> dict[str, Any]:
        """PUT /v2/invite from the inviting server: sign the invite of a local user and keep it."""
        if not isinstance(body, dict) or not isinstance(body.get("event"), dict):
            raise MatrixError(400, Codes.BAD_JSON, "'event' is required")
        if await self._room_store.blocked_by(room_id) is not None:
            raise MatrixError(403, Codes.FORBIDDEN, BLOCKED_ROOM)
        version_id = body.get("room_version", "1")
        if version_id not in KNOWN_ROOM_VERSIONS:
            raise MatrixError(400, Codes.INCOMPATIBLE_ROOM_VERSION, f"Unsupported room version {version_id!r}",
                              room_version=version_id)
        version = get_room_version(version_id)
        room_state = body.get("invite_room_state", [])
        if not isinstance(room_state, list) or not all(isinstance(s, dict) for s in room_state):
            raise MatrixError(400, Codes.BAD_JSON, "'invite_room_state' must be a list of events")
        stripped = to_stripped(room_state)
        try:
            checked = await self._checker.check_pdu(body["event"], version, origin, expected_room_id=room_id)
        except InvalidPduFormat as err:  # not an event of its room version (e.g. a float in it)
            raise MatrixError(400, Codes.BAD_JSON, f"Invalid invite event: {err.reason}") from None
        except PduDropped as err:
            raise MatrixError(403, Codes.FORBIDDEN, f"Invalid invite event: {err.reason}") from None
        event = checked.event
        if event.event_id != event_id or event.type != "m.room.member" or event.membership != "invite" \
                or checked.redacted:
            raise MatrixError(400, Codes.INVALID_PARAM, "Not the invite event this request names")
        if not _is_local(event.state_key or "", self.server_name):
            raise MatrixError(403, Codes.FORBIDDEN, "The invitee is not a user of this server")
        if server_name_of(event.sender) != origin:
            raise MatrixError(403, Codes.FORBIDDEN, "The inviter is not a user of the requesting server")
        # Only per invitee (rc_invites.per_user), as Synapse: the room and the inviter are the
        # inviting server's to limit.
        await self._limiter.check_invite(None, event.state_key, None)
        signed = parse_pdu(sign_event(dict(event.pdu), self.server_name, self._signing_key, version), version)
        if not await self.is_resident(room_id):
            await self.store_out_of_band(signed, version, stripped)
        return {"event": signed.pdu}

    async def on_invite_v1(self, origin: str, room_id: str, event_id: str, pdu: Any) -> list[Any]:
        """PUT /v1/invite (deprecated, still sent by older servers): the body is the event
        itself, its room state rides in its `unsigned`, and the answer is `[200, {"event"}]`.
        The room version is 1 or 2 (invites-v1.yaml), whose events have one format; the
        create event among the room state says which."""
        if not isinstance(pdu, dict):
            raise MatrixError(400, Codes.BAD_JSON, "The invite event must be a JSON object")
        unsigned = pdu.get("unsigned")
        room_state = unsigned.get("invite_room_state", []) if isinstance(unsigned, dict) else []
        version_id = "1"
        for state in room_state if isinstance(room_state, list) else []:
            if not isinstance(state, dict) or state.get("type") != "m.room.create":
                continue
            content = state.get("content")
            if isinstance(content, dict) and content.get("room_version") in ("1", "2"):
                version_id = content["room_version"]
        answer = await self.on_invite(origin, room_id, event_id,
                                      {"room_version": version_id, "event": pdu, "invite_room_state": room_state})
        return [200, answer]

    async def store_out_of_band(self, event: Event, version: RoomVersion, stripped: list[dict[str, Any]] | None) -> None:
        """A local user's membership in a room we are not in (an invite or knock received, an
        invite rejected): stored outside the DAG but with a stream position, so /sync sees it."""
        async with self._events.room_lock(event.room_id):
            if await self.is_resident(event.room_id):
                return  # the event arrives (or arrived) with the room's own events
            if stripped is not None:
                await self._store.save_stripped_state(event.event_id, event.room_id, stripped)
            self._rooms.events.put(event)

            def build(positions: list[int], group_ids: list[int]) -> tuple[PersistBatch, list[Event]]:
                row = event_row(event, positions[0], self._clock.now_ms(), None, None, outlier=True)
                return PersistBatch(room_id=event.room_id, events=[row],
                                    memberships=[membership_row(event, positions[0])]), [event]

            async def room_row() -> None:
                await self._room_store.create_room(event.room_id, version.identifier, None, self._clock.now_ms())

            await self._events.store(build, 1, 0, before_persist=room_row)

    # --- as the resident server ---------------------------------------------------------------

    async def make_membership(self, origin: str, room_id: str, user_id: str, membership: str,
                              supported_versions: Sequence[str] | None) -> dict[str, Any]:
        """make_join / make_leave / make_knock: the event the user's server should sign."""
        if server_name_of(user_id) != origin:
            raise MatrixError(403, Codes.FORBIDDEN, "The user is not of the requesting server")
        snap = await self._rooms.snapshot(room_id)
        if snap is None or not await self.is_resident(room_id):
            raise MatrixError(404, Codes.NOT_FOUND, "This server is not in the room")
        await self._refuse_while_partial(room_id, f"make_{membership}")
        if supported_versions is not None and snap.version.identifier not in supported_versions:
            raise MatrixError(400, Codes.INCOMPATIBLE_ROOM_VERSION, "Your server does not support this room's version",
                              room_version=snap.version.identifier)
        if membership == "knock" and not snap.version.auth.knock_join_rule:
            raise MatrixError(400, Codes.INCOMPATIBLE_ROOM_VERSION, "This room version does not support knocking",
                              room_version=snap.version.identifier)
        if membership == "join":  # a room with too many recent joins takes no more for now (rc_joins_per_room)
            await self._limiter.check(Action.JOINS_PER_ROOM, room_id, update=False)
        content: dict[str, Any] = {"membership": membership}
        if membership == "join":
            via = await self._restricted.authoriser(snap, user_id)
            if via is not None:
                content["join_authorised_via_users_server"] = via
        event, _ = await self._events.prepare(room_id, user_id, "m.room.member", content, state_key=user_id)
        return {"room_version": snap.version.identifier, "event": template_of(event)}

    async def send_membership(self, origin: str, room_id: str, event_id: str, pdu: Any,
                              membership: str) -> Event:
        """send_join / send_leave / send_knock: take the signed event through the intake."""
        snap = await self._rooms.snapshot(room_id)
        if snap is None or not await self.is_resident(room_id):
            raise MatrixError(404, Codes.NOT_FOUND, "This server is not in the room")
        await self._refuse_while_partial(room_id, f"send_{membership}")
        if membership == "join":
            await self._limiter.check(Action.JOINS_PER_ROOM, room_id, update=False)
        content = pdu.get("content") if isinstance(pdu, dict) else None
        via = content.get("join_authorised_via_users_server") if isinstance(content, dict) else None
        if membership == "join" and isinstance(via, str) and _is_local(via, self.server_name):
            # We authorise this restricted join: our signature goes on it (spec: restricted
            # rooms), and check 2 then finds every signature it requires.
            try:
                pdu = sign_event(dict(pdu), self.server_name, self._signing_key, snap.version)
            except Exception:
                raise MatrixError(400, Codes.BAD_JSON, "Invalid event") from None
        try:
            checked = await self._checker.check_pdu(pdu, snap.version, origin, expected_room_id=room_id)
        except PduDropped as err:
            raise MatrixError(400, Codes.BAD_JSON, f"Invalid event: {err.reason}") from None
        event = checked.event
        if checked.redacted or event.event_id != event_id or event.type != "m.room.member" \
                or event.membership != membership or event.state_key != event.sender \
                or server_name_of(event.sender) != origin:
            raise MatrixError(400, Codes.BAD_JSON, f"Not a {membership} event of a user of the requesting server")
        async with self._events.room_lock(room_id):
            try:
                outcome = await self._intake.process(origin, event, fetch_missing=True)
            except IntakeError as err:
                raise MatrixError(400, Codes.UNKNOWN, str(err)) from None
        if outcome.rejected or outcome.soft_failed:
            raise MatrixError(403, Codes.FORBIDDEN, f"The {membership} is not allowed: {outcome.rejected or 'soft-failed'}")
        if self._relay is not None:
            await self._relay([event], [origin])
        return event

    async def _refuse_while_partial(self, room_id: str, endpoint: str) -> None:
        """With a partial state we can neither build a template on it nor answer with the
        state: 404, as if we were not in the room (as Synapse)."""
        if self._partial is not None and await self._partial.is_partial(room_id):
            raise MatrixError(404, Codes.NOT_FOUND,
                              f"Unable to handle /{endpoint} right now; this server is not fully joined")


def unwrap_v1_answer(server: str, body: Any) -> dict[str, Any]:
    """The answer of a deprecated v1 invite/send_join/send_leave: `[200, answer]`."""
    if isinstance(body, list) and len(body) == 2 and body[0] == 200 and isinstance(body[1], dict):
        return body[1]
    raise MatrixError(502, Codes.UNKNOWN, f"{server} sent a malformed answer")


def to_stripped(events: Any) -> list[dict[str, Any]]:
    """Stripped state events (what clients see under invite_state / knock_state) from what a
    server sent: full PDUs (v1.16+) or stripped events (older servers). Malformed entries go."""
    if not isinstance(events, list):
        return []
    stripped = []
    for event in events:
        if isinstance(event, dict) and isinstance(event.get("type"), str) and isinstance(event.get("state_key"), str) \
                and isinstance(event.get("content"), dict) and isinstance(event.get("sender"), str):
            stripped.append({k: event[k] for k in ("type", "state_key", "content", "sender")})
    return stripped


def _is_local(user_id: str, server_name: str) -> bool:
    return user_id.endswith(":" + server_name)


def _event_id_of(pdu: Any, version: RoomVersion) -> str | None:
    try:
        return parse_pdu(pdu, version).event_id if isinstance(pdu, dict) else None
    except InvalidEvent:
        return None
