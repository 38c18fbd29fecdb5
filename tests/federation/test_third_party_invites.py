"""Third-party invites across two ChatGO servers (spec server-server "Third-party invites"): an
e-mail address invited on A gets bound to a user of B; the identity server tells B (/3pid/onbind),
B is not in the room and exchanges the invite with A (PUT /exchange_third_party_invite), and A
invites the user over federation. Also the exchange endpoint's answers to bad requests."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from signedjson.key import generate_signing_key
from signedjson.sign import sign_json

from federation.client import RemoteError, path
from tests.api.test_third_party_invites import FakeIdentityServer
from tests.federation.matrix_client import new_user

V3 = "/_matrix/client/v3"
EMAIL = "bob@example.org"
EXCHANGE = "/_matrix/federation/v1/exchange_third_party_invite/{}"


@pytest.fixture
async def identity_server(stubs):
    fake = FakeIdentityServer()
    stub = stubs()
    stub.app = fake.app()
    fake.name = stub.name
    await stub.start()
    return fake


@pytest.fixture
async def servers(homeservers):
    # The fake identity server's certificate is the test CA's; identity requests use the
    # system's trust store, hence verify_certificates false (as tests/api does).
    return await homeservers(identity={"verify_certificates": False}), \
        await homeservers(identity={"verify_certificates": False})


async def _invite_by_email(alice, identity_server, room_id: str) -> dict:
    await alice.request("POST", f"{V3}/rooms/{quote(room_id)}/invite", {
        "id_server": identity_server.name, "id_access_token": "idtoken", "medium": "email", "address": EMAIL})
    return identity_server.stored[-1]


async def test_an_address_bound_on_another_server_is_invited_through_an_exchange(servers, tls_files,
                                                                                 identity_server):
    a, b = servers
    alice, bob = await new_user(a, tls_files, "alice"), await new_user(b, tls_files, "bob")
    room_id = await alice.create_room(preset="private_chat", name="Zoo")
    stored = await _invite_by_email(alice, identity_server, room_id)
    _, pending = await alice.state(room_id, "m.room.third_party_invite", stored["token"])
    assert pending["display_name"] == "Bob"

    # The identity server calls B (the bound user's server), which is not in the room.
    onbind = {"medium": "email", "address": EMAIL, "mxid": bob.user_id,
              "invites": [identity_server.signed_invite(stored, bob.user_id)]}
    status, body = await bob.request("PUT", "/_matrix/federation/v1/3pid/onbind", onbind)
    assert (status, body) == (200, {})

    # A issued the invite (with the signed token) and B countersigned it: bob sees it and joins.
    _, member = await alice.state(room_id, "m.room.member", bob.user_id)
    assert member["membership"] == "invite"
    assert member["third_party_invite"]["signed"]["token"] == stored["token"]
    assert member["third_party_invite"]["display_name"] == "Bob"
    synced = await bob.wait_for(lambda s: room_id in s.get("rooms", {}).get("invite", {}))
    stripped = synced["rooms"]["invite"][room_id]["invite_state"]["events"]
    assert [e["content"]["name"] for e in stripped if e["type"] == "m.room.name"] == ["Zoo"]
    await bob.join(room_id, via=[a.name])
    _, member = await alice.state(room_id, "m.room.member", bob.user_id)
    assert member["membership"] == "join"


async def test_exchange_bad_requests_get_matrix_errors(servers, tls_files, identity_server):
    a, b = servers
    alice, bob = await new_user(a, tls_files, "alice"), await new_user(b, tls_files, "bob")
    room_id = await alice.create_room(preset="private_chat")
    other_room = await alice.create_room(preset="private_chat")
    stored = await _invite_by_email(alice, identity_server, room_id)
    signed = identity_server.signed_invite(stored, bob.user_id)["signed"]

    def partial(room: str = room_id, signed: dict = signed, **changes) -> dict:
        return {"type": "m.room.member", "room_id": room, "sender": alice.user_id, "state_key": bob.user_id,
                "content": {"membership": "invite", "third_party_invite": {"display_name": "Bob", "signed": signed}},
                **changes}

    async def exchange(room: str, body: dict) -> tuple[int, str]:
        with pytest.raises(RemoteError) as err:
            await b.services.federation_client.put_json(a.name, path(EXCHANGE, room), body)
        return err.value.status, err.value.errcode

    # The body's room is not the path's; an unknown room; a malformed body.
    assert await exchange(other_room, partial()) == (400, "M_INVALID_PARAM")
    assert await exchange("!nowhere:" + a.name, partial("!nowhere:" + a.name)) == (404, "M_NOT_FOUND")
    assert await exchange(room_id, partial(content={"membership": "join"})) == (400, "M_BAD_JSON")
    assert await exchange(room_id, partial(state_key="bob")) == (400, "M_BAD_JSON")
    # A token the room has no m.room.third_party_invite for; a signature by another key; a
    # token signed for someone else.
    unknown = sign_json({"mxid": bob.user_id, "token": "nope"}, identity_server.name, identity_server.key)
    assert await exchange(room_id, partial(signed=unknown)) == (403, "M_FORBIDDEN")
    forged = sign_json({"mxid": bob.user_id, "token": stored["token"]}, identity_server.name, generate_signing_key("0"))
    assert await exchange(room_id, partial(signed=forged)) == (403, "M_FORBIDDEN")
    assert await exchange(room_id, partial(state_key=f"@carol:{b.name}")) == (403, "M_FORBIDDEN")
    # Nothing was issued; a revoked key is refused too.
    assert (await alice.state(room_id, "m.room.member", bob.user_id, expect=404))[0] == 404
    identity_server.revoked = True
    assert await exchange(room_id, partial()) == (403, "M_FORBIDDEN")
    identity_server.revoked = False
    # Unsigned requests are refused by the federation request check.
    status, body = await bob.request("PUT", path(EXCHANGE, room_id), partial(), expect=None)
    assert status == 401 and body["errcode"] == "M_UNAUTHORIZED"
    # And the well-formed one goes through.
    await b.services.federation_client.put_json(a.name, path(EXCHANGE, room_id), partial())
    _, member = await alice.state(room_id, "m.room.member", bob.user_id)
    assert member["membership"] == "invite"
