"""E2E keys across servers: a client on A queries and claims keys of a user on B; B's
federation endpoints (/user/devices, /user/keys/query, /user/keys/claim) answered for peers."""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from signedjson.sign import sign_json

from federation.client import RemoteError
from tests.api.test_e2e_keys import cross_signing_key, device_keys

V3 = "/_matrix/client/v3"
FED = "/_matrix/federation/v1"
UNREACHABLE = "localhost:1"  # nothing listens there: connection refused


class Client:
    """A logged-in client of one test server, over HTTPS."""

    def __init__(self, server, tls_files) -> None:
        self.server = server
        self._ssl = ssl.create_default_context(cafile=str(tls_files.ca_cert))
        self.token: str | None = None
        self.user_id = ""
        self.device_id = ""

    async def login(self, user_id: str, password: str, device_name: str | None = None) -> "Client":
        body: dict[str, Any] = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user_id},
                                "password": password}
        if device_name:
            body["initial_device_display_name"] = device_name
        status, answer = await self.request("POST", f"{V3}/login", body)
        assert status == 200, answer
        self.token, self.user_id, self.device_id = answer["access_token"], answer["user_id"], answer["device_id"]
        return self

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with aiohttp.ClientSession() as session:
            async with session.request(method, self.server.url + path, json=body, headers=headers,
                                       ssl=self._ssl) as resp:
                return resp.status, await resp.json()

    async def post(self, path: str, body: Any) -> tuple[int, Any]:
        return await self.request("POST", path, body)


async def alice_with_keys(b, tls_files, want_master_public: bool = False):
    """@alice on B with a named device, device keys signed by her self-signing key, one
    one-time key, a fallback key, and the three cross-signing keys."""
    alice_id = await b.services.accounts.create_user("alice", "password-1")
    alice = await Client(b, tls_files).login(alice_id, "password-1", "Alice's phone")
    keys, _ = device_keys(alice_id, alice.device_id)
    status, body = await alice.post(f"{V3}/keys/upload", {
        "device_keys": keys,
        "one_time_keys": {"signed_curve25519:AAAA": {"key": "one-time"}},
        "fallback_keys": {"signed_curve25519:FFFF": {"key": "fallback", "fallback": True}},
    })
    assert status == 200, body
    master, master_key, master_public = cross_signing_key(alice_id, "master")
    self_signing, self_key, self_public = cross_signing_key(alice_id, "self_signing", master_key)
    user_signing, _, _ = cross_signing_key(alice_id, "user_signing", master_key)
    status, body = await alice.post(f"{V3}/keys/device_signing/upload", {
        "master_key": master, "self_signing_key": self_signing, "user_signing_key": user_signing})
    assert status == 200, body
    signed_device = sign_json({k: v for k, v in keys.items() if k != "signatures"}, alice_id, self_key)
    status, body = await alice.post(f"{V3}/keys/signatures/upload", {alice_id: {alice.device_id: signed_device}})
    assert (status, body["failures"]) == (200, {})
    return alice, keys, master, self_signing, master_public if want_master_public else self_public


async def test_client_on_a_queries_and_claims_keys_of_a_user_on_b(homeservers, tls_files):
    a = await homeservers()
    b = await homeservers()
    alice, keys, master, self_signing, self_public = await alice_with_keys(b, tls_files)
    bob_id = await a.services.accounts.create_user("bob", "password-2")
    bob = await Client(a, tls_files).login(bob_id, "password-2")

    status, body = await bob.post(f"{V3}/keys/query", {
        "device_keys": {alice.user_id: [], f"@nobody:{b.name}": [], f"@carol:{UNREACHABLE}": []},
        "timeout": 5000})
    assert status == 200, body
    device = body["device_keys"][alice.user_id][alice.device_id]
    assert device["keys"] == keys["keys"] and device["algorithms"] == keys["algorithms"]
    signatures = device["signatures"][alice.user_id]
    assert set(signatures) == {f"ed25519:{alice.device_id}", f"ed25519:{self_public}"}
    # allow_device_name_lookup_over_federation is off on b (the default): no device names.
    assert device["unsigned"] == {}
    assert body["device_keys"][f"@nobody:{b.name}"] == {}
    assert body["master_keys"][alice.user_id]["keys"] == master["keys"]
    assert body["self_signing_keys"][alice.user_id]["keys"] == self_signing["keys"]
    assert body["self_signing_keys"][alice.user_id]["signatures"] == self_signing["signatures"]
    assert alice.user_id not in body["user_signing_keys"]  # never given to other servers
    assert list(body["failures"]) == [UNREACHABLE] and body["failures"][UNREACHABLE]["status"] == 503

    # Only the devices asked for.
    status, body = await bob.post(f"{V3}/keys/query", {"device_keys": {alice.user_id: ["NOSUCHDEVICE"]}})
    assert (status, body["device_keys"], body["failures"]) == (200, {alice.user_id: {}}, {})

    # The one-time key once, then the fallback key; the unreachable server is a failure.
    claim = {"one_time_keys": {alice.user_id: {alice.device_id: "signed_curve25519"},
                               f"@carol:{UNREACHABLE}": {"DEV": "signed_curve25519"}}, "timeout": 5000}
    status, body = await bob.post(f"{V3}/keys/claim", claim)
    assert status == 200, body
    assert body["one_time_keys"] == {alice.user_id: {alice.device_id: {"signed_curve25519:AAAA": {"key": "one-time"}}}}
    assert list(body["failures"]) == [UNREACHABLE]
    status, body = await bob.post(f"{V3}/keys/claim", claim)
    assert body["one_time_keys"] == {
        alice.user_id: {alice.device_id: {"signed_curve25519:FFFF": {"key": "fallback", "fallback": True}}}}
    # Alice's server counts the claim: her next sync says no one-time key is left.
    status, body = await alice.request("GET", f"{V3}/sync?timeout=0")
    assert body["device_one_time_keys_count"] == {"signed_curve25519": 0}


async def test_verifying_a_user_of_another_server(homeservers, tls_files):
    """Bob on A signs Alice's master key (on B) with his user-signing key: A checks it against
    the key B gives, keeps it, and shows it to Bob only."""
    a = await homeservers()
    b = await homeservers()
    alice, _, master, _, master_public = await alice_with_keys(b, tls_files, want_master_public=True)
    bob_id = await a.services.accounts.create_user("bob", "password-2")
    bob = await Client(a, tls_files).login(bob_id, "password-2")
    bob_master, bob_master_key, _ = cross_signing_key(bob_id, "master")
    bob_user_signing, bob_user_key, bob_user_public = cross_signing_key(bob_id, "user_signing", bob_master_key)
    status, body = await bob.post(f"{V3}/keys/device_signing/upload",
                                  {"master_key": bob_master, "user_signing_key": bob_user_signing})
    assert status == 200, body

    signed = sign_json({k: v for k, v in master.items() if k != "signatures"}, bob_id, bob_user_key)
    status, body = await bob.post(f"{V3}/keys/signatures/upload", {alice.user_id: {master_public: signed}})
    assert (status, body["failures"]) == (200, {})
    status, body = await bob.post(f"{V3}/keys/query", {"device_keys": {alice.user_id: []}})
    assert body["master_keys"][alice.user_id]["signatures"][bob_id] == {
        f"ed25519:{bob_user_public}": signed["signatures"][bob_id][f"ed25519:{bob_user_public}"]}
    # Nobody else sees it (Carol on A, and B's own users).
    carol_id = await a.services.accounts.create_user("carol", "password-3")
    carol = await Client(a, tls_files).login(carol_id, "password-3")
    status, body = await carol.post(f"{V3}/keys/query", {"device_keys": {alice.user_id: []}})
    assert bob_id not in body["master_keys"][alice.user_id].get("signatures", {})

    # A signature on a key that is not Alice's master key, or a forged one, is refused.
    status, body = await bob.post(f"{V3}/keys/signatures/upload", {alice.user_id: {"notherkey": signed}})
    assert body["failures"][alice.user_id]["notherkey"]["errcode"] == "M_NOT_FOUND"
    forged = sign_json({k: v for k, v in master.items() if k != "signatures"}, bob_id, bob_master_key)
    forged["signatures"][bob_id] = {f"ed25519:{bob_user_public}": next(iter(forged["signatures"][bob_id].values()))}
    status, body = await bob.post(f"{V3}/keys/signatures/upload", {alice.user_id: {master_public: forged}})
    assert body["failures"][alice.user_id][master_public]["errcode"] == "M_INVALID_SIGNATURE"


async def test_federation_key_endpoints_answer_for_local_users_only(homeservers, tls_files):
    a = await homeservers()
    b = await homeservers(federation={"allow_device_name_lookup_over_federation": True})
    alice, keys, master, self_signing, _ = await alice_with_keys(b, tls_files)
    peer = a.services.federation_client

    devices = await peer.get_json(b.name, f"{FED}/user/devices/{quote(alice.user_id)}")
    assert devices["user_id"] == alice.user_id and devices["stream_id"] > 0
    assert [d["device_id"] for d in devices["devices"]] == [alice.device_id]
    assert devices["devices"][0]["device_display_name"] == "Alice's phone"
    assert devices["devices"][0]["keys"]["keys"] == keys["keys"]
    assert devices["master_key"]["keys"] == master["keys"]
    assert devices["self_signing_key"]["keys"] == self_signing["keys"]
    assert "user_signing_key" not in devices
    with pytest.raises(RemoteError) as err:
        await peer.get_json(b.name, f"{FED}/user/devices/{quote('@someone:' + a.name)}")
    assert (err.value.status, err.value.errcode) == (400, "M_INVALID_PARAM")

    # A peer asking about users of a third server is not answered for them (nor forwarded).
    body = await peer.post_json(b.name, f"{FED}/user/keys/query",
                                {"device_keys": {alice.user_id: [], f"@carol:{UNREACHABLE}": []}})
    assert set(body["device_keys"]) == {alice.user_id}
    assert body["device_keys"][alice.user_id][alice.device_id]["unsigned"] == {"device_display_name": "Alice's phone"}
    assert "user_signing_keys" not in body and "failures" not in body
    body = await peer.post_json(b.name, f"{FED}/user/keys/claim", {"one_time_keys": {
        alice.user_id: {alice.device_id: "signed_curve25519"}, f"@carol:{UNREACHABLE}": {"D": "signed_curve25519"}}})
    assert body == {"one_time_keys": {alice.user_id: {alice.device_id: {"signed_curve25519:AAAA": {"key": "one-time"}}}}}
    with pytest.raises(RemoteError) as err:
        await peer.post_json(b.name, f"{FED}/user/keys/query", {"device_keys": ["not", "an", "object"]})
    assert (err.value.status, err.value.errcode) == (400, "M_BAD_JSON")
    # Unsigned requests are refused.
    with pytest.raises(RemoteError) as err:
        await peer.request("POST", b.name, f"{FED}/user/keys/query", content={"device_keys": {}}, signed=False)
    assert err.value.status == 401


async def test_device_names_are_kept_from_peers_by_default(homeservers, tls_files):
    """allow_device_name_lookup_over_federation is false by default (as in Synapse): the
    device list and key query answers for peers carry no display names; our own users still
    see them."""
    a = await homeservers()
    b = await homeservers()
    alice, keys, _, _, _ = await alice_with_keys(b, tls_files)
    peer = a.services.federation_client

    devices = await peer.get_json(b.name, f"{FED}/user/devices/{quote(alice.user_id)}")
    assert [d["device_id"] for d in devices["devices"]] == [alice.device_id]
    assert "device_display_name" not in devices["devices"][0]
    assert devices["devices"][0]["keys"]["keys"] == keys["keys"]
    body = await peer.post_json(b.name, f"{FED}/user/keys/query", {"device_keys": {alice.user_id: []}})
    assert body["device_keys"][alice.user_id][alice.device_id]["unsigned"] == {}
    status, body = await alice.post(f"{V3}/keys/query", {"device_keys": {alice.user_id: []}})
    assert body["device_keys"][alice.user_id][alice.device_id]["unsigned"] == {"device_display_name": "Alice's phone"}


async def test_query_timeout_bounds_a_slow_server(homeservers, stubs, tls_files):
    import asyncio
    import time

    a = await homeservers()
    slow = stubs()

    async def never(request):
        await asyncio.sleep(30)
        return {}

    slow.route("POST", f"{FED}/user/keys/query", never)
    await slow.start()
    bob_id = await a.services.accounts.create_user("bob", "password-2")
    bob = await Client(a, tls_files).login(bob_id, "password-2")
    started = time.monotonic()
    status, body = await bob.post(f"{V3}/keys/query", {"device_keys": {f"@x:{slow.name}": []}, "timeout": 500})
    assert status == 200 and list(body["failures"]) == [slow.name]
    assert time.monotonic() - started < 5


async def _cached(server, user_id: str):
    from storage.remote_devices import RemoteDeviceStore

    return (await RemoteDeviceStore(server.db).get([user_id])).get(user_id)


async def test_device_lists_of_users_in_shared_rooms_are_cached_and_kept_up_to_date(homeservers, tls_files):
    import asyncio

    # b gives device names to peers, so that the cache is seen keeping them too.
    a, b = await homeservers(), await homeservers(federation={"allow_device_name_lookup_over_federation": True})
    alice, keys, *_ = await alice_with_keys(b, tls_files)
    bob_id = await a.services.accounts.create_user("bob", "password-2")
    bob = await Client(a, tls_files).login(bob_id, "password-2")
    status, body = await alice.post(f"{V3}/createRoom", {"preset": "public_chat"})
    room_id = body["room_id"]
    status, body = await bob.post(f"{V3}/join/{quote(room_id)}?server_name={quote(b.name)}", {})
    assert status == 200, body

    # Not tracked yet: the query fetches the whole list (GET /user/devices) and keeps it.
    assert await _cached(a, alice.user_id) is None
    status, body = await bob.post(f"{V3}/keys/query", {"device_keys": {alice.user_id: []}})
    assert status == 200 and list(body["device_keys"][alice.user_id]) == [alice.device_id]
    cached = await _cached(a, alice.user_id)
    assert cached is not None and set(cached.devices) == {alice.device_id}

    # A new device of Alice's: B's m.device_list_update reaches the cache.
    phone = await Client(b, tls_files).login(alice.user_id, "password-1", "Alice's tablet")
    phone_keys, _ = device_keys(alice.user_id, phone.device_id)
    status, body = await phone.post(f"{V3}/keys/upload", {"device_keys": phone_keys})
    assert status == 200, body
    for _ in range(200):
        cached = await _cached(a, alice.user_id)
        if cached is not None and cached.devices.get(phone.device_id, None) and cached.devices[phone.device_id].keys:
            break
        await asyncio.sleep(0.05)
    assert cached.devices[phone.device_id].keys["keys"] == phone_keys["keys"]
    assert cached.devices[phone.device_id].display_name == "Alice's tablet"

    # B goes away: the query is answered from the cache, with no failure.
    await b.stop()
    status, body = await bob.post(f"{V3}/keys/query", {"device_keys": {alice.user_id: []}, "timeout": 2000})
    assert status == 200 and body["failures"] == {}
    assert body["device_keys"][alice.user_id][alice.device_id]["keys"] == keys["keys"]

    # Bob leaves: no one here shares a room with Alice any more, so her list is forgotten.
    status, body = await bob.post(f"{V3}/rooms/{quote(room_id)}/leave", {})
    assert status == 200, body
    assert await _cached(a, alice.user_id) is None
