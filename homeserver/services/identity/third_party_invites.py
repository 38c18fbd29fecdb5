"""Third-party invites (spec: "Third-party invites"): inviting someone by e-mail address.

POST /rooms/{roomId}/invite with `id_server`, `id_access_token`, `medium` and `address` (and
createRoom's `invite_3pid`): the identity server is asked who the address belongs to (v2
lookup, sha256-hashed with its pepper, or plain when it offers only "none"); a bound address is
invited as that user. An unbound one is stored with the identity server (store-invite), and the
room gets an m.room.third_party_invite (state key: the identity server's token) with the keys
that will sign the invite. When the address is bound later, the identity server calls
/3pid/onbind: each of its signed invites becomes the m.room.member invite of the new user, sent
as the original inviter (the auth rules check the signature against the third-party invite's
keys, and let the inviter do it even after leaving). When the room or the inviter is another
server's, the partial invite goes to the inviter's server (PUT /exchange_third_party_invite),
which checks it the same way and invites the user through the ordinary federation invite.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Iterable
from typing import Any

import aiohttp
import yarl
from signedjson.key import decode_verify_key_bytes
from signedjson.sign import SignatureVerifyException, verify_signed_json
from unpaddedbase64 import decode_base64

from federation.client import FederationClient, FederationError, client_error, path
from homeserver.core.ids import is_valid_user_id, server_name_of
from homeserver.errors import Codes, MatrixError
from homeserver.services.auth import Requester
from homeserver.services.ratelimit import Action, RateLimiter
from homeserver.services.rooms.creation import RoomService
from homeserver.services.rooms.events import EventService
from homeserver.services.rooms.membership import MembershipService
from homeserver.services.rooms.profile_lookup import ProfileLookup
from homeserver.services.rooms.state import RoomStateCache

logger = logging.getLogger(__name__)
REQUEST_TIMEOUT_S = 30
# Room state an identity server may put in the invitation it mails (store-invite).
_ROOM_DETAILS = {"m.room.canonical_alias": ("alias", "room_alias"), "m.room.avatar": ("url", "room_avatar_url"),
                 "m.room.join_rules": ("join_rule", "room_join_rules"), "m.room.name": ("name", "room_name")}


class ThirdPartyInviteService:
    def __init__(self, rooms: RoomService, membership: MembershipService, events: EventService,
                 room_state: RoomStateCache, profiles: ProfileLookup, server_name: str,
                 verify_certificates: bool = True, allowed_servers: Iterable[str] | None = None, *,
                 limiter: RateLimiter, federation: FederationClient) -> None:
        self._limiter = limiter
        self._federation = federation
        self._verify = verify_certificates
        # identity.server_allowlist: None = any identity server; empty = none is ever contacted.
        self._allowed = frozenset(allowed_servers) if allowed_servers is not None else None
        self._rooms = rooms
        self._membership = membership
        self._events = events
        self._state = room_state
        self._profiles = profiles
        self._server_name = server_name

    async def invite(self, requester: Requester, room_id: str, body: dict[str, Any]) -> None:
        """POST /rooms/{roomId}/invite with a third-party identifier. Limited per inviter
        (rc_third_party_invite) before the identity server is asked, as Synapse."""
        id_server, token, medium, address = (_string(body, k) for k in ("id_server", "id_access_token", "medium",
                                                                       "address"))
        self._check_trusted(id_server)
        await self._limiter.check(Action.THIRD_PARTY_INVITE, requester.user_id, user_id=requester.user_id)
        if await self._state.snapshot(room_id) is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown room")
        user_id = await self._lookup(id_server, token, medium, address)
        if user_id is not None:
            await self._membership.invite(requester.user_id, room_id, user_id)
            return
        await self._invite_unbound(requester.user_id, room_id, id_server, token, medium, address)

    def _check_trusted(self, id_server: str) -> None:
        if self._allowed is not None and id_server not in self._allowed:
            raise MatrixError(400, Codes.SERVER_NOT_TRUSTED, "This identity server is not trusted (identity.server_allowlist)")

    async def create_room(self, requester: Requester, body: dict[str, Any]) -> str:
        """POST /createRoom with `invite_3pid`: the room, then each third-party invite."""
        invites = body.get("invite_3pid") or []
        if not isinstance(invites, list) or not all(isinstance(i, dict) for i in invites):
            raise MatrixError(400, Codes.BAD_JSON, "'invite_3pid' must be a list of objects")
        for invite in invites:
            for key in ("id_server", "id_access_token", "medium", "address"):
                _string(invite, key)
            self._check_trusted(invite["id_server"])  # before the room exists: nothing half-made
        room_id = await self._rooms.create_room(requester.user_id, {k: v for k, v in body.items() if k != "invite_3pid"})
        for invite in invites:
            await self.invite(requester, room_id, invite)
        return room_id

    async def on_bind(self, body: dict[str, Any]) -> None:
        """PUT /_matrix/federation/v1/3pid/onbind: the identity server's signed invites for a
        newly bound address become member invites."""
        invites = body.get("invites") or []
        if not isinstance(invites, list):
            raise MatrixError(400, Codes.BAD_JSON, "'invites' must be a list")
        failure: MatrixError | None = None
        for invite in invites:
            try:
                await self._exchange(invite)
            except MatrixError as err:  # the others still go through (as Synapse)
                logger.info("third-party invite not exchanged: %s", err.message)
                failure = err
        if failure is not None:
            raise failure

    async def on_exchange(self, room_id: str, body: dict[str, Any]) -> None:
        """PUT /_matrix/federation/v1/exchange_third_party_invite/{roomId}: the invitee's server
        (not in the room) hands us the partial m.room.member invite it got through /3pid/onbind;
        checked like an onbind invite, then issued as an ordinary invite (countersigned by the
        invitee's server)."""
        if body.get("type") != "m.room.member":
            raise MatrixError(400, Codes.INVALID_PARAM, "'type' must be m.room.member")
        if body.get("room_id") != room_id:
            raise MatrixError(400, Codes.INVALID_PARAM, "'room_id' must be the room of the request path")
        sender, mxid, content = body.get("sender"), body.get("state_key"), body.get("content")
        if not isinstance(sender, str) or not is_valid_user_id(sender) or not isinstance(mxid, str) \
                or not is_valid_user_id(mxid):
            raise MatrixError(400, Codes.BAD_JSON, "'sender' and 'state_key' must be user IDs")
        if not isinstance(content, dict) or content.get("membership") != "invite":
            raise MatrixError(400, Codes.BAD_JSON, "'content.membership' must be invite")
        third_party = content.get("third_party_invite")
        signed = third_party.get("signed") if isinstance(third_party, dict) else None
        if not isinstance(signed, dict) or not isinstance(signed.get("token"), str):
            raise MatrixError(400, Codes.BAD_JSON, "'content.third_party_invite.signed' needs a token")
        if await self._state.snapshot(room_id) is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown room")
        if server_name_of(sender) != self._server_name:
            # We can only issue (and sign) the invite as one of our own users.
            raise MatrixError(403, Codes.FORBIDDEN, "The invite's sender is not a user of this server")
        await self._issue(room_id, sender, mxid, signed)

    # --- internals ---------------------------------------------------------------------------

    async def _exchange(self, invite: Any) -> None:
        signed = invite.get("signed") if isinstance(invite, dict) else None
        if not isinstance(signed, dict) or not isinstance(signed.get("token"), str):
            raise MatrixError(400, Codes.BAD_JSON, "A third-party invite needs a signed token")
        sender, mxid, room_id = invite.get("sender"), invite.get("mxid"), invite.get("room_id")
        if not all(isinstance(v, str) for v in (sender, mxid, room_id)) or not is_valid_user_id(mxid) \
                or not is_valid_user_id(sender):
            raise MatrixError(400, Codes.BAD_JSON, "A third-party invite needs sender, mxid and room_id")
        if server_name_of(sender) == self._server_name and await self._state.snapshot(room_id) is not None:
            await self._issue(room_id, sender, mxid, signed)
        else:
            await self._forward(room_id, sender, mxid, signed)

    async def _forward(self, room_id: str, sender: str, mxid: str, signed: dict[str, Any]) -> None:
        """Spec (server-server "Third-party invites"): a server not in the room sends the partial
        invite to the inviter's server (then, as Synapse, the server in a v1-v11 room ID)."""
        partial = {"type": "m.room.member", "room_id": room_id, "sender": sender, "state_key": mxid,
                   "content": {"membership": "invite", "third_party_invite": {"signed": signed}}}
        destinations = [server_name_of(sender)] + ([server_name_of(room_id)] if ":" in room_id else [])
        failure: MatrixError = MatrixError(404, Codes.NOT_FOUND, "Unknown room")
        for destination in dict.fromkeys(d for d in destinations if d and d != self._server_name):
            try:
                await self._federation.put_json(
                    destination, path("/_matrix/federation/v1/exchange_third_party_invite/{}", room_id), partial)
                return
            except FederationError as err:
                failure = client_error(err)
        raise failure

    async def _issue(self, room_id: str, sender: str, mxid: str, signed: dict[str, Any]) -> None:
        """The invite of `mxid` that fulfils the room's m.room.third_party_invite `signed` names."""
        token = signed["token"]
        snap = await self._state.snapshot(room_id)
        pending = (await self._state.state_events(snap, [("m.room.third_party_invite", token)])).get(
            ("m.room.third_party_invite", token)) if snap is not None else None
        if pending is None:
            raise MatrixError(403, Codes.FORBIDDEN, "No such third-party invite in the room")
        if pending.sender != sender:
            raise MatrixError(403, Codes.FORBIDDEN, "The third-party invite was sent by someone else")
        if signed.get("mxid") != mxid:
            raise MatrixError(403, Codes.FORBIDDEN, "The signed invite is for another user")
        await self._check_key_still_valid(signed, pending.content)
        third_party: dict[str, Any] = {"signed": signed}
        if isinstance(pending.content.get("display_name"), str):
            third_party["display_name"] = pending.content["display_name"]
        await self._membership.invite(sender, room_id, mxid, ratelimited=False, third_party_invite=third_party)

    async def _check_key_still_valid(self, signed: dict[str, Any], invite: dict[str, Any]) -> None:
        """The key that signed the invite must still be valid by its identity server's word
        (key_validity_url), as Synapse checks: a revoked key, or a server that does not answer,
        and the invite is refused."""
        entries = [e for e in invite.get("public_keys") or [] if isinstance(e, dict)]
        if isinstance(invite.get("public_key"), str):
            entries.append({"public_key": invite["public_key"], "key_validity_url": invite.get("key_validity_url")})
        signatures = signed.get("signatures")
        for entry in entries:
            public_key, url = entry.get("public_key"), entry.get("key_validity_url")
            if not isinstance(public_key, str) or not isinstance(signatures, dict):
                continue
            if not any(_verifies(signed, server, key_id, public_key)
                       for server, keys in signatures.items() if isinstance(keys, dict) for key_id in keys):
                continue
            if not isinstance(url, str) or not url.startswith("https://"):
                raise MatrixError(403, Codes.FORBIDDEN, "The invite's key has no validity URL")
            self._check_trusted(yarl.URL(url).authority)
            answer = await _get(self._verify, url, {"public_key": public_key})
            if answer.get("valid") is not True:
                raise MatrixError(403, Codes.FORBIDDEN, "The identity server revoked the invite's key")
            return
        raise MatrixError(403, Codes.FORBIDDEN, "No valid signature on the third-party invite")

    async def _invite_unbound(self, sender: str, room_id: str, id_server: str, token: str, medium: str,
                              address: str) -> None:
        snap = await self._state.snapshot(room_id)
        state = await self._state.state_events(snap, [(t, "") for t in _ROOM_DETAILS]) if snap else {}
        request: dict[str, Any] = {"medium": medium, "address": address, "room_id": room_id, "sender": sender}
        for event_type, (key, name) in _ROOM_DETAILS.items():
            event = state.get((event_type, ""))
            if event is not None and isinstance(event.content.get(key), str):
                request[name] = event.content[key]
        profile = await self._profiles.member_profile(sender)
        if "displayname" in profile:
            request["sender_display_name"] = profile["displayname"]
        if "avatar_url" in profile:
            request["sender_avatar_url"] = profile["avatar_url"]
        stored = await _call(self._verify, id_server, token, "POST", "/_matrix/identity/v2/store-invite", request)
        keys = stored.get("public_keys")
        if not isinstance(stored.get("token"), str) or not isinstance(keys, list) or not keys \
                or not isinstance(keys[0], dict):
            raise MatrixError(502, Codes.UNKNOWN, "The identity server's store-invite answer is incomplete")
        content = {
            "display_name": stored.get("display_name") if isinstance(stored.get("display_name"), str) else "",
            "key_validity_url": keys[0].get("key_validity_url"),
            "public_key": keys[0].get("public_key"),
            "public_keys": keys,
        }
        await self._events.send(room_id, sender, "m.room.third_party_invite", content, state_key=stored["token"])

    async def _lookup(self, id_server: str, token: str, medium: str, address: str) -> str | None:
        """The user the identity server binds the address to (v2 lookup), or None."""
        details = await _call(self._verify, id_server, token, "GET", "/_matrix/identity/v2/hash_details")
        algorithms = details.get("algorithms") or []
        pepper = details.get("lookup_pepper")
        if "sha256" in algorithms and isinstance(pepper, str):
            digest = hashlib.sha256(f"{address} {medium} {pepper}".encode()).digest()
            lookup, algorithm = base64.urlsafe_b64encode(digest).decode().rstrip("="), "sha256"
        elif "none" in algorithms:
            lookup, algorithm = f"{address} {medium}", "none"
        else:
            raise MatrixError(502, Codes.UNKNOWN, "The identity server offers no lookup algorithm we know")
        found = await _call(self._verify, id_server, token, "POST", "/_matrix/identity/v2/lookup",
                            {"addresses": [lookup], "algorithm": algorithm, "pepper": pepper})
        user_id = (found.get("mappings") or {}).get(lookup)
        return user_id if isinstance(user_id, str) and is_valid_user_id(user_id) else None


def _verifies(signed: dict[str, Any], server: str, key_id: str, public_key: str) -> bool:
    try:
        verify_signed_json(signed, server, decode_verify_key_bytes(key_id, decode_base64(public_key)))
        return True
    except (SignatureVerifyException, ValueError, TypeError):
        return False


async def _get(verify: bool, url: str, params: dict[str, str]) -> dict[str, Any]:
    """A key-validity check; any failure means the invite's key cannot be trusted (403)."""
    return await _request(verify, "GET", url, params=params, failure=(403, Codes.FORBIDDEN),
                          unreachable="Could not check the invite's key")


def _string(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise MatrixError(400, Codes.MISSING_PARAM, f"'{key}' must be a non-empty string")
    return value


async def _call(verify: bool, id_server: str, token: str, method: str, path: str, body: Any = None) -> dict[str, Any]:
    """One request to an identity server (HTTPS, its access token as a bearer token)."""
    if "/" in id_server or "@" in id_server:
        raise MatrixError(400, Codes.INVALID_PARAM, "'id_server' must be a server name")
    return await _request(verify, method, f"https://{id_server}{path}", json=body,
                          headers={"Authorization": f"Bearer {token}"}, failure=(502, Codes.UNKNOWN),
                          unreachable="Could not reach the identity server")


async def _request(verify: bool, method: str, url: str, *, failure: tuple[int, str], unreachable: str,
                   **kwargs: Any) -> dict[str, Any]:
    """The JSON object an identity server answers with 200; anything else is `failure`."""
    status, errcode = failure
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)) as session:
            async with session.request(method, url, ssl=None if verify else False, **kwargs) as resp:
                answer = await resp.json(content_type=None)
                if resp.status != 200 or not isinstance(answer, dict):
                    raise MatrixError(status, errcode, f"The identity server answered {resp.status}")
                return answer
    except (aiohttp.ClientError, TimeoutError, ValueError) as err:
        raise MatrixError(status, errcode, f"{unreachable}: {err}") from None
