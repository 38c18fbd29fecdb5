"""ChatGO and a real Synapse as federation peers: keys, profile and alias queries both ways.

Each test gets a fresh ChatGO (`homeservers()`) and fresh users on the session's Synapse (the
`synapse` fixture), both `localhost:<port>` over TLS with certificates from the test CA, which
both trust.
"""

from __future__ import annotations

import ssl
import time
from urllib.parse import quote

import pytest
from signedjson.key import encode_verify_key_base64, get_verify_key
from signedjson.sign import sign_json, verify_signed_json

from federation.client import RemoteError
from homeserver.core.signing import InvalidSignature
from tests.federation.synapse import MatrixClient, unique_name


def ca_context(tls_files) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls_files.ca_cert))


async def test_chatgo_keyring_fetches_and_verifies_synapse_keys(homeservers, synapse):
    chatgo = await homeservers()
    key_id = f"ed25519:{synapse.signing_key.version}"
    now = int(time.time() * 1000)
    keys = await chatgo.services.keyring.get_keys(synapse.name, [key_id], now)
    assert keys[key_id].key == encode_verify_key_base64(synapse.verify_key)
    assert keys[key_id].valid_until_ts > now

    signed = sign_json({"hello": "world"}, synapse.name, synapse.signing_key)
    await chatgo.services.keyring.verify_json_for_server(synapse.name, signed, now)
    signed["hello"] = "tampered"
    with pytest.raises(InvalidSignature):
        await chatgo.services.keyring.verify_json_for_server(synapse.name, signed, now)


async def test_synapse_fetches_chatgo_keys_as_a_notary(homeservers, synapse, tls_files):
    """Synapse's notary endpoint fetches our /_matrix/key/v2/server and countersigns it.

    (Synapse answers a query without key IDs from its cache only, so name the key; it also
    insists on `minimum_valid_until_ts` in each criteria object.)"""
    chatgo = await homeservers()
    client = MatrixClient(synapse.url, ca_context(tls_files), "", "")
    our_key_id = f"ed25519:{chatgo.signing_key.version}"
    body = await client.call("POST", "/_matrix/key/v2/query", {
        "server_keys": {chatgo.name: {our_key_id: {"minimum_valid_until_ts": 0}}}})
    [response] = body["server_keys"]
    assert response["server_name"] == chatgo.name
    assert response["verify_keys"][our_key_id]["key"] == encode_verify_key_base64(get_verify_key(chatgo.signing_key))
    verify_signed_json(response, chatgo.name, get_verify_key(chatgo.signing_key))
    verify_signed_json(response, synapse.name, synapse.verify_key)


async def test_chatgo_answers_as_a_notary_for_synapse(homeservers, synapse, tls_files):
    chatgo = await homeservers()
    client = MatrixClient(chatgo.url, ca_context(tls_files), "", "")
    body = await client.call("GET", f"/_matrix/key/v2/query/{quote(synapse.name)}")
    [response] = body["server_keys"]
    verify_signed_json(response, synapse.name, synapse.verify_key)
    verify_signed_json(response, chatgo.name, get_verify_key(chatgo.signing_key))


async def test_signed_requests_to_synapse(homeservers, synapse):
    """Our X-Matrix signature is accepted by Synapse (which fetches our keys to check it)."""
    chatgo = await homeservers()
    version = await chatgo.services.federation_client.get_json(synapse.name, "/_matrix/federation/v1/version")
    assert version["server"]["name"] == "Synapse"
    sy = await synapse.register("sy", displayname="Sy Napse")
    profile = await chatgo.services.federation_client.get_json(
        synapse.name, "/_matrix/federation/v1/query/profile", {"user_id": sy.user_id})
    assert profile["displayname"] == "Sy Napse"
    with pytest.raises(RemoteError) as err:
        await chatgo.services.federation_client.get_json(
            synapse.name, "/_matrix/federation/v1/query/profile", {"user_id": f"@nobody:{synapse.name}"})
    assert err.value.status == 404


async def test_chatgo_client_reads_a_synapse_profile(homeservers, synapse, tls_files):
    chatgo = await homeservers()
    sy = await synapse.register("sy")
    await sy.set_displayname("Sy Napse")
    bob = await MatrixClient.chatgo_user(chatgo, ca_context(tls_files), "bob")

    assert await bob.call("GET", f"/_matrix/client/v3/profile/{quote(sy.user_id)}") == {"displayname": "Sy Napse"}
    assert await bob.call("GET", f"/_matrix/client/v3/profile/{quote(sy.user_id)}/displayname") == {
        "displayname": "Sy Napse"}
    status, body = await bob.request("GET", f"/_matrix/client/v3/profile/{quote('@nobody:' + synapse.name)}")
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")


async def test_synapse_client_reads_a_chatgo_profile(homeservers, synapse, tls_files):
    """Synapse asks our /query/profile with an X-Matrix signature that we check against its keys."""
    chatgo = await homeservers()
    bob = await MatrixClient.chatgo_user(chatgo, ca_context(tls_files), "bob")
    await bob.set_displayname("Bob of ChatGO")
    sy = await synapse.register("sy")

    body = await sy.call("GET", f"/_matrix/client/v3/profile/{quote(bob.user_id)}")
    assert body.get("displayname") == "Bob of ChatGO"
    status, body = await sy.request("GET", f"/_matrix/client/v3/profile/{quote('@nobody:' + chatgo.name)}")
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")


async def test_aliases_resolve_both_ways(homeservers, synapse, tls_files):
    chatgo = await homeservers()
    bob = await MatrixClient.chatgo_user(chatgo, ca_context(tls_files), "bob")
    sy = await synapse.register("sy")

    lounge, lobby = unique_name("lounge"), unique_name("lobby")
    synapse_room = await sy.create_room(room_alias_name=lounge)
    chatgo_room = await bob.create_room(room_alias_name=lobby)

    synapse_alias = f"#{lounge}:{synapse.name}"
    body = await bob.call("GET", f"/_matrix/client/v3/directory/room/{quote(synapse_alias)}")
    assert body["room_id"] == synapse_room and synapse.name in body["servers"]
    status, body = await bob.request("GET", f"/_matrix/client/v3/directory/room/{quote('#none:' + synapse.name)}")
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")

    chatgo_alias = f"#{lobby}:{chatgo.name}"
    body = await sy.call("GET", f"/_matrix/client/v3/directory/room/{quote(chatgo_alias)}")
    assert body["room_id"] == chatgo_room and chatgo.name in body["servers"]
    status, body = await sy.request("GET", f"/_matrix/client/v3/directory/room/{quote('#none:' + chatgo.name)}")
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
