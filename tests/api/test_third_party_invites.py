"""Inviting by e-mail address through an identity server (a fake one on loopback, over TLS
with a self-signed certificate), and the identity server's /3pid/onbind callback."""

import base64
import hashlib
import socket

import pytest
from aiohttp import web
from signedjson.key import encode_verify_key_base64, generate_signing_key, get_verify_key
from signedjson.sign import sign_json

from federation.tls import generate_self_signed_certificate, server_ssl_context
from homeserver.web_app import make_web_app
from tests.api.ratelimits import assert_limited, limits

V3 = "/_matrix/client/v3"
EMAIL = "lemurs@monkeyworld.org"


@pytest.fixture
def config_overrides():
    return {"identity": {"verify_certificates": False}}


class FakeIdentityServer:
    """Just what the homeserver asks of one: hash details, lookup, store-invite, key validity."""

    def __init__(self) -> None:
        self.key = generate_signing_key("0")
        self.public_key = encode_verify_key_base64(get_verify_key(self.key))
        self.bindings: dict[str, str] = {}
        self.stored: list[dict] = []
        self.revoked = False
        self.name = ""

    def bind(self, address: str, user_id: str) -> None:
        digest = hashlib.sha256(f"{address} email pepper".encode()).digest()
        self.bindings[base64.urlsafe_b64encode(digest).decode().rstrip("=")] = user_id

    def signed_invite(self, stored: dict, user_id: str) -> dict:
        signed = sign_json({"mxid": user_id, "token": stored["token"]}, self.name, self.key)
        return {"sender": stored["sender"], "mxid": user_id, "room_id": stored["room_id"], "token": stored["token"],
                "signed": signed}

    def app(self) -> web.Application:
        async def hash_details(request):
            assert request.headers["Authorization"] == "Bearer idtoken"
            return web.json_response({"lookup_pepper": "pepper", "algorithms": ["none", "sha256"]})

        async def lookup(request):
            body = await request.json()
            return web.json_response({"mappings": {a: self.bindings[a] for a in body["addresses"] if a in self.bindings}})

        async def store_invite(request):
            body = await request.json()
            stored = {**body, "token": f"tok{len(self.stored)}"}
            self.stored.append(stored)
            url = f"https://{self.name}/_matrix/identity/v2/pubkey/isvalid"
            return web.json_response({"token": stored["token"], "display_name": "Bob",
                                      "public_keys": [{"public_key": self.public_key, "key_validity_url": url}]})

        async def is_valid(request):
            return web.json_response({"valid": not self.revoked and request.query["public_key"] == self.public_key})

        app = web.Application()
        app.router.add_get("/_matrix/identity/v2/hash_details", hash_details)
        app.router.add_post("/_matrix/identity/v2/lookup", lookup)
        app.router.add_post("/_matrix/identity/v2/store-invite", store_invite)
        app.router.add_get("/_matrix/identity/v2/pubkey/isvalid", is_valid)
        return app


@pytest.fixture
async def identity_server(tmp_path):
    fake = FakeIdentityServer()
    generate_self_signed_certificate("127.0.0.1", tmp_path / "is.crt", tmp_path / "is.key")
    runner = web.AppRunner(fake.app(), access_log=None)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    fake.name = f"127.0.0.1:{sock.getsockname()[1]}"
    await web.SockSite(runner, sock, ssl_context=server_ssl_context(tmp_path / "is.crt", tmp_path / "is.key")).start()
    yield fake
    await runner.cleanup()


@pytest.fixture
async def federation(aiohttp_client, services):
    return await aiohttp_client(make_web_app(services, ["federation"]))


def _invite_body(identity_server) -> dict:
    return {"id_server": identity_server.name, "id_access_token": "idtoken", "medium": "email", "address": EMAIL}


async def test_inviting_a_bound_address_invites_its_user(alice, bob, identity_server):
    identity_server.bind(EMAIL, "@bob:test.local")
    status, room = await alice.post(f"{V3}/createRoom", {})
    status, body = await alice.post(f"{V3}/rooms/{room['room_id']}/invite", _invite_body(identity_server))
    assert status == 200, body
    status, member = await alice.get(f"{V3}/rooms/{room['room_id']}/state/m.room.member/@bob:test.local")
    assert member["membership"] == "invite"
    # createRoom's invite_3pid does the same.
    status, room = await alice.post(f"{V3}/createRoom", {"invite_3pid": [_invite_body(identity_server)]})
    assert status == 200, room
    status, member = await alice.get(f"{V3}/rooms/{room['room_id']}/state/m.room.member/@bob:test.local")
    assert member["membership"] == "invite"


async def test_an_unbound_address_is_invited_when_it_gets_bound(client, alice, bob, identity_server, federation):
    status, room = await alice.post(f"{V3}/createRoom", {"name": "Zoo", "preset": "public_chat"})
    room_id = room["room_id"]
    carol = client.with_token((await client.register("carol"))["access_token"])
    await carol.post(f"{V3}/join/{room_id}", {})  # someone stays when alice leaves
    status, body = await alice.post(f"{V3}/rooms/{room_id}/invite", _invite_body(identity_server))
    assert status == 200, body
    stored = identity_server.stored[0]
    assert stored["room_name"] == "Zoo" and stored["sender"] == "@alice:test.local"
    pending = await alice.get(f"{V3}/rooms/{room_id}/state/m.room.third_party_invite/{stored['token']}")
    assert pending[1]["display_name"] == "Bob"
    # Alice has left by then: the invite still goes through (the auth rules let the inviter).
    await alice.post(f"{V3}/rooms/{room_id}/leave", {})
    onbind = {"medium": "email", "address": EMAIL, "mxid": "@bob:test.local",
              "invites": [identity_server.signed_invite(stored, "@bob:test.local")]}
    resp = await federation.post("/_matrix/federation/v1/3pid/onbind", json=onbind)
    assert resp.status == 200, await resp.text()
    status, synced = await bob.get(f"{V3}/sync")
    invite_state = synced["rooms"]["invite"][room_id]["invite_state"]["events"]
    assert ("m.room.member", "@alice:test.local") in [(e["type"], e["state_key"]) for e in invite_state]
    status, body = await bob.post(f"{V3}/join/{room_id}", {})
    assert status == 200, body


async def test_onbind_refuses_a_revoked_key_or_a_forged_signature(alice, bob, identity_server, federation):
    status, room = await alice.post(f"{V3}/createRoom", {})
    room_id = room["room_id"]
    await alice.post(f"{V3}/rooms/{room_id}/invite", _invite_body(identity_server))
    stored = identity_server.stored[0]
    forged = identity_server.signed_invite(stored, "@bob:test.local")
    forged["signed"] = sign_json({"mxid": "@bob:test.local", "token": stored["token"]}, identity_server.name,
                                 generate_signing_key("0"))
    resp = await federation.put("/_matrix/federation/v1/3pid/onbind", json={"invites": [forged]})
    assert resp.status == 403
    identity_server.revoked = True
    resp = await federation.put("/_matrix/federation/v1/3pid/onbind",
                                json={"invites": [identity_server.signed_invite(stored, "@bob:test.local")]})
    assert resp.status == 403
    status, body = await alice.get(f"{V3}/rooms/{room_id}/state/m.room.member/@bob:test.local")
    assert status == 404
    status, body = await bob.post(f"{V3}/join/{room_id}", {})
    assert status == 403


async def test_third_party_invite_bad_input(alice, identity_server):
    status, room = await alice.post(f"{V3}/createRoom", {})
    status, body = await alice.post(f"{V3}/rooms/{room['room_id']}/invite", {"medium": "email", "address": EMAIL})
    assert status == 400 and body["errcode"] == "M_MISSING_PARAM"
    status, body = await alice.post(f"{V3}/rooms/{room['room_id']}/invite",
                                    {**_invite_body(identity_server), "id_server": "127.0.0.1:1"})
    assert status == 502


class TestRateLimit:
    @pytest.fixture
    def config_overrides(self):
        return {"identity": {"verify_certificates": False},
                **limits({"rc_third_party_invite": {"per_second": 0.001, "burst_count": 1}})}

    async def test_third_party_invites_per_inviter(self, alice, identity_server):
        """rc_third_party_invite, checked before the identity server is asked (as Synapse)."""
        identity_server.bind(EMAIL, "@bob:test.local")
        status, room = await alice.post(f"{V3}/createRoom", {})
        status, body = await alice.post(f"{V3}/rooms/{room['room_id']}/invite", _invite_body(identity_server))
        assert status == 200, body
        asked = len(identity_server.stored)
        await assert_limited(alice, "POST", f"{V3}/rooms/{room['room_id']}/invite",
                             {**_invite_body(identity_server), "address": "other@monkeyworld.org"})
        assert len(identity_server.stored) == asked
