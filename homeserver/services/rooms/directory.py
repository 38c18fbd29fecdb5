"""The room directory: aliases (create, resolve, delete, list) and the public room list.

Rules: aliases must be on this server and follow the alias grammar; an alias is deleted by
its creator, a server admin, or a room member allowed to send m.room.canonical_alias (and
then also leaves the room's canonical alias); a room is published or unpublished by its
admins (power level 100, or a v12 creator); publicRooms pages with an offset `since` token.

Application services (spec: Registration, "Server admin style permissions"): an alias in a
namespace an appservice holds exclusively is refused to everybody else (M_EXCLUSIVE); an
appservice creates and deletes only aliases of its namespaces, without the membership and
creator checks; a local alias of an appservice's namespaces that does not exist is asked for
from it (`query_alias`) before the answer is "not found". Each appservice also keeps a room
directory per third-party network it bridges ("Application service room directories", as
Synapse: no membership or power check): publicRooms lists one network's with
`third_party_instance_id` "{appservice ID}|{network ID}" (the `instance_id` of the protocol
instances in the third-party lookups), and the server's with every network's with
`include_all_networks`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from federation.client import FederationClient, FederationError, client_error
from homeserver.core import power_levels
from homeserver.core.appservices import AppServiceRegistry
from homeserver.core.ids import InvalidId, is_valid_room_id, parse_room_alias
from homeserver.errors import Codes, MatrixError
from homeserver.services.auth import Requester
from homeserver.services.clock import Clock
from homeserver.services.rooms.events import EventService
from homeserver.services.rooms.state import RoomStateCache
from storage.directory import DirectoryStore, PublicRoomRow

ADMIN_LEVEL = 100
MAX_PUBLIC_ROOMS_LIMIT = 500


class DirectoryService:
    def __init__(self, directory: DirectoryStore, rooms: RoomStateCache, events: EventService, clock: Clock,
                 server_name: str, federation: FederationClient | None = None,
                 joined_servers: Callable[[str], Awaitable[set[str]]] | None = None, *,
                 appservices: AppServiceRegistry | None = None,
                 query_alias: Callable[[str], Awaitable[bool]] | None = None,
                 public_rooms_over_federation: bool = False) -> None:
        self._public_rooms_over_federation = public_rooms_over_federation
        self._appservices = appservices or AppServiceRegistry()
        self._query_alias = query_alias
        self._alias_listeners: list[Callable[[str], None]] = []
        self._federation = federation
        self._joined_servers = joined_servers
        self._directory = directory
        self._rooms = rooms
        self._events = events
        self._clock = clock
        self._server_name = server_name

    def on_aliases_changed(self, listener: Callable[[str], None]) -> None:
        """Call `listener(room_id)` after an alias of the room was created or deleted here."""
        self._alias_listeners.append(listener)

    # --- aliases ---------------------------------------------------------------------------------------

    def check_alias_claim(self, alias: str, user_id: str | None, app_service_id: str | None) -> None:
        """400 M_EXCLUSIVE when the alias is not the requester's to create or delete: an
        appservice only touches aliases of its namespaces; anybody else (but an appservice's
        sender) none an appservice holds exclusively."""
        service = self._appservices.by_id(app_service_id) if app_service_id else None
        if service is not None:
            if not service.is_alias_in_namespace(alias):
                raise MatrixError(400, Codes.EXCLUSIVE, "This application service has not reserved this kind of alias.")
        elif user_id is not None and not self._appservices.may_claim_alias(alias, user_id):
            raise MatrixError(400, Codes.EXCLUSIVE, "This alias is reserved by an application service.")

    def check_local_alias(self, alias: str) -> str:
        try:
            parsed = parse_room_alias(alias)
        except InvalidId as err:
            raise MatrixError(400, Codes.INVALID_PARAM, str(err)) from None
        if parsed.domain != self._server_name:
            raise MatrixError(400, Codes.INVALID_PARAM, "Room alias must be on this server")
        if any(c.isspace() for c in parsed.localpart):
            raise MatrixError(400, Codes.INVALID_PARAM, "Room aliases may not contain whitespace")
        return alias

    async def create_alias(self, requester_id: str | None, alias: str, room_id: Any, *,
                           app_service_id: str | None = None) -> None:
        self.check_local_alias(alias)
        if not isinstance(room_id, str):
            raise MatrixError(400, Codes.BAD_JSON, "'room_id' must be a string")
        self.check_alias_claim(alias, requester_id, app_service_id)
        if await self._rooms.snapshot(room_id) is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown room")
        if not await self._directory.create_alias(alias, room_id, requester_id, self._clock.now_ms()):
            raise MatrixError(409, Codes.UNKNOWN, f"Room alias {alias} already exists")
        self.aliases_changed(room_id)

    def aliases_changed(self, room_id: str) -> None:
        for listener in self._alias_listeners:
            listener(room_id)

    async def resolve_alias(self, alias: str, *, ask_remote: bool = True) -> dict[str, Any]:
        """{"room_id", "servers"}; another server's alias is asked for over federation
        (GET /query/directory) unless `ask_remote` is false (answering a peer)."""
        try:
            parsed = parse_room_alias(alias)
        except InvalidId as err:
            raise MatrixError(400, Codes.INVALID_PARAM, str(err)) from None
        if parsed.domain != self._server_name:
            if not ask_remote or self._federation is None:
                raise MatrixError(404, Codes.NOT_FOUND, f"Room alias {alias} not found")
            return await self._remote_alias(alias, parsed.domain)
        row = await self._directory.get_alias(alias)
        if row is None and self._query_alias is not None and await self._query_alias(alias):
            row = await self._directory.get_alias(alias)  # an appservice created it just now
        if row is None:
            raise MatrixError(404, Codes.NOT_FOUND, f"Room alias {alias} not found")
        # Every server in the room can help a peer join it; ours first.
        others = await self._joined_servers(row.room_id) if self._joined_servers is not None else set()
        return {"room_id": row.room_id, "servers": [self._server_name, *sorted(others - {self._server_name})]}

    async def _remote_alias(self, alias: str, server: str) -> dict[str, Any]:
        try:
            body = await self._federation.get_json(server, "/_matrix/federation/v1/query/directory",
                                                   query={"room_alias": alias})
        except FederationError as err:
            raise client_error(err) from None
        room_id, servers = (body.get("room_id"), body.get("servers")) if isinstance(body, dict) else (None, None)
        if not is_valid_room_id(room_id) or not isinstance(servers, list) \
                or not all(isinstance(s, str) for s in servers):
            raise MatrixError(502, Codes.UNKNOWN, f"{server} sent a malformed alias answer")
        return {"room_id": room_id, "servers": servers}

    async def room_and_servers(self, room_id_or_alias: str) -> tuple[str, list[str]]:
        """The room ID, and the servers an alias lists as being in the room (none for an ID)."""
        if room_id_or_alias.startswith("#"):
            answer = await self.resolve_alias(room_id_or_alias)
            return answer["room_id"], list(answer.get("servers") or [])
        return await self.room_id_for(room_id_or_alias), []

    async def room_id_for(self, room_id_or_alias: str) -> str:
        if room_id_or_alias.startswith("#"):
            return (await self.resolve_alias(room_id_or_alias))["room_id"]
        if room_id_or_alias.startswith("!"):
            return room_id_or_alias
        raise MatrixError(400, Codes.INVALID_PARAM, f"{room_id_or_alias!r} is not a room ID or alias")

    async def delete_alias(self, requester: Requester, alias: str) -> None:
        self.check_local_alias(alias)
        row = await self._directory.get_alias(alias)
        if row is None:
            raise MatrixError(404, Codes.NOT_FOUND, f"Room alias {alias} not found")
        if requester.app_service_id is not None:  # as Synapse: an appservice's own aliases, no other check
            self.check_alias_claim(alias, requester.user_id, requester.app_service_id)
        else:
            if not (requester.is_admin or row.creator == requester.user_id
                    or await self._can_send(requester.user_id, row.room_id, "m.room.canonical_alias", "")):
                raise MatrixError(403, Codes.FORBIDDEN, "You may not delete this alias")
            self.check_alias_claim(alias, requester.user_id, None)
        await self._directory.delete_alias(alias)
        self.aliases_changed(row.room_id)
        await self._drop_from_canonical_alias(requester.user_id, row.room_id, alias)

    async def local_aliases(self, requester: Requester, room_id: str) -> list[str]:
        snap = await self._rooms.snapshot(room_id)
        if snap is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown room")
        state = await self._rooms.state_events(snap, [("m.room.member", requester.user_id), ("m.room.history_visibility", "")])
        member = state.get(("m.room.member", requester.user_id))
        visibility = state.get(("m.room.history_visibility", ""))
        joined = member is not None and member.content.get("membership") == "join"
        world = visibility is not None and visibility.content.get("history_visibility") == "world_readable"
        if not (joined or world or requester.is_admin):
            raise MatrixError(403, Codes.FORBIDDEN, "You are not in this room")
        return await self._directory.aliases_of_room(room_id)

    async def check_canonical_alias_content(self, room_id: str, content: dict[str, Any]) -> None:
        """Spec (m.room.canonical_alias): the aliases must point to this room (400 M_BAD_ALIAS)."""
        aliases = []
        if "alias" in content and content["alias"] is not None:
            aliases.append(content["alias"])
        alt = content.get("alt_aliases", [])
        if not isinstance(alt, list):
            raise MatrixError(400, Codes.INVALID_PARAM, "'alt_aliases' must be a list")
        aliases += alt
        for alias in aliases:
            if not isinstance(alias, str):
                raise MatrixError(400, Codes.INVALID_PARAM, "Aliases must be strings")
            try:
                parsed = parse_room_alias(alias)
            except InvalidId as err:
                raise MatrixError(400, Codes.INVALID_PARAM, str(err)) from None
            if parsed.domain != self._server_name:
                continue  # remote aliases would need federation to check
            row = await self._directory.get_alias(alias)
            if row is None or row.room_id != room_id:
                raise MatrixError(400, "M_BAD_ALIAS", f"{alias} does not point to this room")

    async def _can_send(self, user_id: str, room_id: str, event_type: str, state_key: str | None) -> bool:
        snap = await self._rooms.snapshot(room_id)
        if snap is None:
            return False
        state = await self._rooms.state_events(
            snap, [("m.room.create", ""), ("m.room.power_levels", ""), ("m.room.member", user_id)])
        member = state.get(("m.room.member", user_id))
        if member is None or member.content.get("membership") != "join":
            return False
        return power_levels.user_power_level(user_id, state) >= power_levels.event_power_level(event_type, state_key, state)

    async def _drop_from_canonical_alias(self, user_id: str, room_id: str, alias: str) -> None:
        snap = await self._rooms.snapshot(room_id)
        if snap is None:
            return
        current = (await self._rooms.state_events(snap, [("m.room.canonical_alias", "")])).get(("m.room.canonical_alias", ""))
        if current is None:
            return
        content = dict(current.content)
        changed = False
        if content.get("alias") == alias:
            content.pop("alias")
            changed = True
        if isinstance(content.get("alt_aliases"), list) and alias in content["alt_aliases"]:
            content["alt_aliases"] = [a for a in content["alt_aliases"] if a != alias]
            changed = True
        if changed:
            try:
                await self._events.send(room_id, user_id, "m.room.canonical_alias", content, state_key="")
            except MatrixError:
                pass  # the alias is gone either way; the event just keeps pointing at it

    # --- the public room list ----------------------------------------------------------------------------

    async def visibility(self, room_id: str) -> str:
        if await self._rooms.snapshot(room_id) is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown room")
        return "public" if await self._directory.is_published(room_id) else "private"

    async def set_visibility(self, requester: Requester, room_id: str, visibility: Any) -> None:
        if visibility not in ("public", "private"):
            raise MatrixError(400, Codes.INVALID_PARAM, "'visibility' must be 'public' or 'private'")
        snap = await self._rooms.snapshot(room_id)
        if snap is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown room")
        if not requester.is_admin:
            state = await self._rooms.state_events(
                snap, [("m.room.create", ""), ("m.room.power_levels", ""), ("m.room.member", requester.user_id)])
            member = state.get(("m.room.member", requester.user_id))
            if member is None or member.content.get("membership") != "join" or \
                    power_levels.user_power_level(requester.user_id, state) < ADMIN_LEVEL:
                raise MatrixError(403, Codes.FORBIDDEN, "Only room admins can publish a room")
        await self._directory.set_published(room_id, visibility == "public", self._clock.now_ms())

    async def publish(self, room_id: str) -> None:
        """Publish a room being created with visibility=public."""
        await self._directory.set_published(room_id, True, self._clock.now_ms())

    async def set_network_visibility(self, requester: Requester, network_id: str, room_id: str,
                                     visibility: Any) -> None:
        """Publish or unpublish a room in the requesting appservice's directory of a network."""
        if requester.app_service_id is None:
            raise MatrixError(403, Codes.FORBIDDEN, "Only application services can edit their room directories")
        if visibility is None:
            raise MatrixError(400, Codes.MISSING_PARAM, "'visibility' is required")
        if visibility not in ("public", "private"):
            raise MatrixError(400, Codes.INVALID_PARAM, "'visibility' must be 'public' or 'private'")
        if not network_id:
            raise MatrixError(400, Codes.INVALID_PARAM, "The network ID may not be empty")
        if visibility == "public" and await self._rooms.snapshot(room_id) is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown room")
        await self._directory.set_published_for_network(requester.app_service_id, network_id, room_id,
                                                        visibility == "public", self._clock.now_ms())

    async def public_rooms_for_server(self, origin: str, **query: Any) -> dict[str, Any]:
        """/_matrix/federation/v1/publicRooms: `public_rooms` for another server, if the
        configuration (allow_public_rooms_over_federation) lets peers read the directory."""
        if not self._public_rooms_over_federation:
            raise MatrixError(403, Codes.FORBIDDEN, f"Federation denied with {origin}")
        return await self.public_rooms(**query)

    async def public_rooms(self, *, limit: Any = None, since: Any = None, search: Any = None,
                           room_types: Any = None, include_all_networks: Any = False,
                           third_party_instance_id: Any = None) -> dict[str, Any]:
        """This server's published rooms (for a client or a peer): its own directory, one
        appservice network's (`third_party_instance_id`), or both with every network's
        (`include_all_networks`)."""
        if not isinstance(include_all_networks, bool):
            raise MatrixError(400, Codes.BAD_JSON, "'include_all_networks' must be a boolean")
        if third_party_instance_id is not None and not isinstance(third_party_instance_id, str):
            raise MatrixError(400, Codes.BAD_JSON, "'third_party_instance_id' must be a string")
        if include_all_networks and third_party_instance_id is not None:
            # "Can only be used if include_all_networks is false" (as Synapse: 400).
            raise MatrixError(400, Codes.INVALID_PARAM,
                              "'third_party_instance_id' cannot be used with 'include_all_networks'")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise MatrixError(400, Codes.INVALID_PARAM, "'limit' must be a non-negative integer")
        limit = min(limit if limit is not None else 100, MAX_PUBLIC_ROOMS_LIMIT) or MAX_PUBLIC_ROOMS_LIMIT
        offset = _parse_since(since)
        if search is not None and not isinstance(search, str):
            raise MatrixError(400, Codes.BAD_JSON, "'generic_search_term' must be a string")
        if room_types is not None and (not isinstance(room_types, list)
                                       or not all(t is None or isinstance(t, str) for t in room_types)):
            raise MatrixError(400, Codes.BAD_JSON, "'room_types' must be a list of strings or null")
        network = _parse_instance_id(third_party_instance_id) if third_party_instance_id is not None else None
        rows = await self._directory.public_rooms(search=search or None, room_types=room_types, network=network,
                                                  all_networks=include_all_networks)
        page = rows[offset:offset + limit]
        body: dict[str, Any] = {"chunk": [_chunk(r) for r in page], "total_room_count_estimate": len(rows)}
        if offset + limit < len(rows):
            body["next_batch"] = f"o{offset + limit}"
        if offset > 0:
            body["prev_batch"] = f"o{max(0, offset - limit)}"
        return body

    async def remote_public_rooms(self, server: str, *, limit: int | None = None, since: str | None = None,
                                  search_filter: dict[str, Any] | None = None, include_all_networks: bool = False,
                                  third_party_instance_id: str | None = None) -> dict[str, Any]:
        """Another server's directory, asked over federation: GET /publicRooms when there is
        no filter (any server answers it), POST with one. Failures map as for remote aliases."""
        if self._federation is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Remote room directories need federation")
        path = "/_matrix/federation/v1/publicRooms"
        try:
            if search_filter is None:
                query: dict[str, Any] = {}
                if limit is not None:
                    query["limit"] = str(limit)
                if since is not None:
                    query["since"] = since
                if include_all_networks:
                    query["include_all_networks"] = "true"
                if third_party_instance_id is not None:
                    query["third_party_instance_id"] = third_party_instance_id
                body = await self._federation.get_json(server, path, query=query)
            else:
                content: dict[str, Any] = {"filter": search_filter, "include_all_networks": include_all_networks}
                for key, value in (("limit", limit), ("since", since),
                                   ("third_party_instance_id", third_party_instance_id)):
                    if value is not None:
                        content[key] = value
                body = await self._federation.post_json(server, path, content=content)
        except FederationError as err:
            raise client_error(err) from None
        if not isinstance(body, dict) or not isinstance(body.get("chunk"), list) \
                or not all(isinstance(room, dict) for room in body["chunk"]):
            raise MatrixError(502, Codes.UNKNOWN, f"{server} sent a malformed room directory")
        return body


def _parse_instance_id(instance_id: str) -> tuple[str, str]:
    """(appservice ID, network ID) of a third-party instance ID; appservice IDs hold no "|"."""
    appservice_id, separator, network_id = instance_id.partition("|")
    if not separator or not appservice_id or not network_id:
        raise MatrixError(400, Codes.INVALID_PARAM, f"Invalid third-party instance ID {instance_id!r}")
    return appservice_id, network_id


def _parse_since(since: Any) -> int:
    if since is None or since == "":
        return 0
    if isinstance(since, str) and since.startswith("o") and since[1:].isdigit():
        return int(since[1:])
    raise MatrixError(400, Codes.INVALID_PARAM, "Invalid 'since' token")


def _chunk(row: PublicRoomRow) -> dict[str, Any]:
    """A PublishedRoomsChunk: exactly the spec's fields, optional ones only when set."""
    entry: dict[str, Any] = {
        "room_id": row.room_id,
        "num_joined_members": row.num_joined_members,
        "world_readable": row.history_visibility == "world_readable",
        "guest_can_join": row.guest_access == "can_join",
        "join_rule": row.join_rule or "invite",
    }
    for key, value in (("name", row.name), ("topic", row.topic), ("canonical_alias", row.canonical_alias),
                       ("avatar_url", row.avatar_url), ("room_type", row.room_type)):
        if value is not None:
            entry[key] = value
    return entry
