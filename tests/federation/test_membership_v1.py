"""The deprecated v1 membership endpoints (PUT /v1/invite, /v1/send_join, /v1/send_leave) in both
roles: answered in their historical `[200, answer]` form, and used when a peer does not know
the v2 endpoint (as older servers, and sytest's, do not)."""

from __future__ import annotations

from typing import Any

from federation.client import RemoteError, path
from homeserver.core.events import parse_pdu
from tests.federation.matrix_client import new_user


class V1OnlyPeer:
    """A federation client whose peers answer every /v2/ membership request 404 without a body
    (an endpoint they do not serve); the rest goes through the real client."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.paths: list[str] = []

    async def put_json(self, destination: str, request_path: str, content: Any, **kw: Any) -> Any:
        self.paths.append(request_path)
        if request_path.startswith("/_matrix/federation/v2/"):
            raise RemoteError(destination, 404, None)
        return await self.real.put_json(destination, request_path, content, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


async def test_v1_send_join_and_send_leave_answer_in_the_array_form(homeservers, tls_files):
    a, b = await homeservers(), await homeservers()
    alice, bob = await new_user(a, tls_files, "alice"), await new_user(b, tls_files, "bob")
    room_id = await alice.create_room(preset="public_chat", name="Old style")
    membership = b.services.federation_membership
    client = b.services.federation_client

    template, version, _ = await membership._make(bob.user_id, room_id, [a.name], "join")
    join = membership._complete(template, version, bob.user_id, {}, "join")
    answer = await client.put_json(a.name, path("/_matrix/federation/v1/send_join/{}/{}", room_id, join.event_id),
                                   join.pdu)
    assert isinstance(answer, list) and answer[0] == 200
    state_types = {(e["type"], e["state_key"]) for e in answer[1]["state"]}
    assert ("m.room.create", "") in state_types and ("m.room.name", "") in state_types
    assert answer[1]["auth_chain"]
    _, member = await alice.state(room_id, "m.room.member", bob.user_id)
    assert member["membership"] == "join"

    template, version, _ = await membership._make(bob.user_id, room_id, [a.name], "leave")
    leave = membership._complete(template, version, bob.user_id, {}, "leave")
    answer = await client.put_json(a.name, path("/_matrix/federation/v1/send_leave/{}/{}", room_id, leave.event_id),
                                   leave.pdu)
    assert answer == [200, {}]
    _, member = await alice.state(room_id, "m.room.member", bob.user_id)
    assert member["membership"] == "leave"


async def test_v1_invite_is_signed_and_kept_for_the_invitee(homeservers, tls_files):
    a, b = await homeservers(), await homeservers()
    alice, bob = await new_user(a, tls_files, "alice"), await new_user(b, tls_files, "bob")
    room_id = await alice.create_room(preset="private_chat", room_version="2", name="Version two")
    invite, _ = await a.services.events.prepare(room_id, alice.user_id, "m.room.member", {"membership": "invite"},
                                                state_key=bob.user_id)
    room_state = await a.services.federation_membership.room_state_pdus(room_id)
    body = {**invite.pdu, "unsigned": {"invite_room_state": room_state}}
    answer = await a.services.federation_client.put_json(
        b.name, path("/_matrix/federation/v1/invite/{}/{}", room_id, invite.event_id), body)

    assert isinstance(answer, list) and answer[0] == 200
    signed = answer[1]["event"]
    assert signed["event_id"] == invite.event_id and set(signed["signatures"]) == {a.name, b.name}
    synced = await bob.wait_for(lambda s: room_id in s.get("rooms", {}).get("invite", {}))
    names = [e for e in synced["rooms"]["invite"][room_id]["invite_state"]["events"] if e["type"] == "m.room.name"]
    assert names and names[0]["content"]["name"] == "Version two"

    # Not an invite: refused, nothing signed.
    message, _ = await a.services.events.prepare(room_id, alice.user_id, "m.room.message", {"body": "hi"})
    try:
        await a.services.federation_client.put_json(
            b.name, path("/_matrix/federation/v1/invite/{}/{}", room_id, message.event_id), message.pdu)
        raise AssertionError("a message was signed as an invite")
    except RemoteError as err:
        assert err.status == 400


async def test_joins_leaves_and_invites_fall_back_to_v1_for_a_peer_without_v2(homeservers, tls_files):
    a, b = await homeservers(), await homeservers()
    alice, bob = await new_user(a, tls_files, "alice"), await new_user(b, tls_files, "bob")
    carol = await new_user(b, tls_files, "carol")

    # Bob's server joins through a resident server that 404s /v2/send_join.
    b_peer = V1OnlyPeer(b.services.federation_client)
    b.services.federation_membership._client = b_peer
    room_id = await alice.create_room(preset="public_chat", name="Fallback")
    await bob.join(room_id, via=[a.name])
    assert any(p.startswith("/_matrix/federation/v1/send_join/") for p in b_peer.paths)
    _, name = await bob.state(room_id, "m.room.name")
    assert name == {"name": "Fallback"}

    # Alice invites Carol into a v2 room: the invitee's server knows only /v1/invite.
    a_peer = V1OnlyPeer(a.services.federation_client)
    a.services.federation_membership._client = a_peer
    old_room = await alice.create_room(preset="private_chat", room_version="2")
    await alice.membership(old_room, "invite", carol.user_id)
    assert any(p.startswith("/_matrix/federation/v1/invite/") for p in a_peer.paths)
    _, member = await alice.state(old_room, "m.room.member", carol.user_id)
    assert member["membership"] == "invite"

    # Carol rejects it (her server is not in the room): /v2/send_leave is unknown, /v1 works.
    await carol.wait_for(lambda s: old_room in s.get("rooms", {}).get("invite", {}))
    await carol.membership(old_room, "leave")
    assert any(p.startswith("/_matrix/federation/v1/send_leave/") for p in b_peer.paths)
    _, member = await alice.state(old_room, "m.room.member", carol.user_id)
    assert member["membership"] == "leave"

    # A room of a version the v1 invite cannot carry: the invite fails cleanly.
    new_room = await alice.create_room(preset="private_chat", room_version="10")
    status, body = await alice.membership(new_room, "invite", carol.user_id, expect=400)
    assert body["errcode"] == "M_INCOMPATIBLE_ROOM_VERSION" and body["room_version"] == "10"


async def test_invite_answer_that_is_no_valid_event_is_bad_json(homeservers, tls_files):
    a, b = await homeservers(), await homeservers()
    alice, bob = await new_user(a, tls_files, "alice"), await new_user(b, tls_files, "bob")

    class FloatAddingPeer(V1OnlyPeer):
        async def put_json(self, destination: str, request_path: str, content: Any, **kw: Any) -> Any:
            answer = await self.real.put_json(destination, request_path, content, **kw)
            return {"event": {**answer["event"], "bad_val": 1.1}}

    a.services.federation_membership._client = FloatAddingPeer(a.services.federation_client)
    room_id = await alice.create_room(preset="private_chat", room_version="6")
    status, body = await alice.membership(room_id, "invite", bob.user_id, expect=400)
    assert body["errcode"] == "M_BAD_JSON"
    # And a float in an invite we receive is refused the same way.
    invite, _ = await a.services.events.prepare(room_id, alice.user_id, "m.room.member", {"membership": "invite"},
                                                state_key=bob.user_id)
    pdu = {**invite.pdu, "content": {**invite.pdu["content"], "bad_val": 1.1}}
    try:
        await a.services.federation_client.put_json(
            b.name, path("/_matrix/federation/v2/invite/{}/{}", room_id, invite.event_id),
            {"room_version": "6", "event": pdu, "invite_room_state": []})
        raise AssertionError("an invite with a float was signed")
    except RemoteError as err:
        assert (err.status, err.errcode) == (400, "M_BAD_JSON")
    assert parse_pdu(invite.pdu, invite.room_version).event_id == invite.event_id


async def test_v1_invite_with_junk_in_its_room_state_is_a_clean_error_or_accepted(homeservers, tls_files):
    a, b = await homeservers(), await homeservers()
    alice, bob = await new_user(a, tls_files, "alice"), await new_user(b, tls_files, "bob")
    room_id = await alice.create_room(preset="private_chat", room_version="1")
    invite, _ = await a.services.events.prepare(room_id, alice.user_id, "m.room.member", {"membership": "invite"},
                                                state_key=bob.user_id)
    for junk in (["not an event", 42, None], "not a list", [{"type": "m.room.create", "content": "x"}]):
        body = {**invite.pdu, "unsigned": {"invite_room_state": junk}}
        try:
            answer = await a.services.federation_client.put_json(
                b.name, path("/_matrix/federation/v1/invite/{}/{}", room_id, invite.event_id), body)
            assert answer[0] == 200
        except RemoteError as err:
            assert err.status == 400, err
