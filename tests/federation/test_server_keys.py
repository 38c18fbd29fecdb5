"""Our key endpoint and the notary API, between real servers over TLS."""

from __future__ import annotations

import time

import aiohttp
from signedjson.key import decode_verify_key_base64, encode_verify_key_base64, generate_signing_key, get_verify_key
from signedjson.sign import verify_signed_json

from homeserver.core.server_keys import check_key_response


async def get(url: str, tls_files, **kw):
    import ssl

    context = ssl.create_default_context(cafile=str(tls_files.ca_cert))
    async with aiohttp.ClientSession() as session:
        async with session.request(kw.pop("method", "GET"), url, ssl=context, **kw) as resp:
            return resp.status, await resp.json()


def verify_key_of(response: dict, key_id: str):
    algorithm, version = key_id.split(":")
    return decode_verify_key_base64(algorithm, version, response["verify_keys"][key_id]["key"])


async def test_key_endpoint_is_signed_and_lists_old_keys(homeservers, tls_files):
    old = generate_signing_key("old1")
    old_public = encode_verify_key_base64(get_verify_key(old))
    server = await homeservers(federation={"old_signing_keys": [
        {"key_id": "ed25519:old1", "key": old_public, "expired_ts": 1_600_000_000_000}]})
    status, body = await get(f"{server.url}/_matrix/key/v2/server", tls_files)
    assert status == 200
    key_id = f"ed25519:{server.signing_key.version}"
    assert body["server_name"] == server.name
    assert body["verify_keys"] == {key_id: {"key": encode_verify_key_base64(get_verify_key(server.signing_key))}}
    assert body["old_verify_keys"] == {"ed25519:old1": {"key": old_public, "expired_ts": 1_600_000_000_000}}
    # Signed by the server with its current key, checked with signedjson alone.
    verify_signed_json(body, server.name, verify_key_of(body, key_id))
    # Valid for a day, as Synapse.
    now = int(time.time() * 1000)
    assert now + 23 * 3600 * 1000 < body["valid_until_ts"] <= now + 24 * 3600 * 1000 + 60_000
    keys = {k.key_id: k for k in check_key_response(body, server.name, now)}
    assert keys["ed25519:old1"].expired and keys["ed25519:old1"].valid_until_ts == 1_600_000_000_000

    # The deprecated form with a key ID (older servers, sytest) answers the same keys.
    status, by_id = await get(f"{server.url}/_matrix/key/v2/server/{key_id}", tls_files)
    assert status == 200
    assert by_id["verify_keys"] == body["verify_keys"] and by_id["old_verify_keys"] == body["old_verify_keys"]
    verify_signed_json(by_id, server.name, verify_key_of(by_id, key_id))


async def test_notary_query_fetches_and_countersigns(homeservers, tls_files):
    notary = await homeservers()
    target = await homeservers()
    status, body = await get(f"{notary.url}/_matrix/key/v2/query/{target.name}", tls_files)
    assert status == 200
    (response,) = body["server_keys"]
    assert response["server_name"] == target.name
    target_key = f"ed25519:{target.signing_key.version}"
    verify_signed_json(response, target.name, verify_key_of(response, target_key))
    verify_signed_json(response, notary.name, get_verify_key(notary.signing_key))

    # The notary kept it: with the target gone it still answers, from its cache.
    await target.stop()
    status, body = await get(f"{notary.url}/_matrix/key/v2/query", tls_files, method="POST",
                             json={"server_keys": {target.name: {target_key: {"minimum_valid_until_ts": 0}},
                                                   notary.name: {}}})
    assert status == 200
    by_server = {r["server_name"]: r for r in body["server_keys"]}
    assert set(by_server) == {target.name, notary.name}
    verify_signed_json(by_server[target.name], target.name, verify_key_of(response, target_key))
    verify_signed_json(by_server[target.name], notary.name, get_verify_key(notary.signing_key))
    # Its own keys, for its own name.
    verify_signed_json(by_server[notary.name], notary.name, get_verify_key(notary.signing_key))


async def test_notary_query_for_an_unreachable_server_is_empty(homeservers, tls_files):
    from tests.federation.conftest import bound_socket

    notary = await homeservers()
    with bound_socket() as closed:  # bound but never listening: connections are refused
        dead = f"localhost:{closed.getsockname()[1]}"
        status, body = await get(f"{notary.url}/_matrix/key/v2/query/{dead}", tls_files)
    assert (status, body) == (200, {"server_keys": []})
    status, body = await get(f"{notary.url}/_matrix/key/v2/query", tls_files, method="POST",
                             json={"server_keys": {}})
    assert (status, body) == (200, {"server_keys": []})
    status, body = await get(f"{notary.url}/_matrix/key/v2/query", tls_files, method="POST",
                             json={"server_keys": ["nope"]})
    assert status == 400 and body["errcode"] == "M_BAD_JSON"


async def test_notary_query_by_key_id_and_a_past_minimum(homeservers, tls_files):
    """GET /query/{serverName}/{keyId} (the deprecated form older servers and sytest use), and a
    minimum_valid_until_ts of 0, which is a given minimum, not "now"."""
    notary, target = await homeservers(), await homeservers()
    target_key = f"ed25519:{target.signing_key.version}"
    status, body = await get(f"{notary.url}/_matrix/key/v2/query/{target.name}/{target_key}", tls_files)
    assert status == 200
    [response] = body["server_keys"]
    assert target_key in response["verify_keys"]
    verify_signed_json(response, notary.name, get_verify_key(notary.signing_key))
    status, body = await get(f"{notary.url}/_matrix/key/v2/query/{target.name}/ed25519:unknown", tls_files)
    assert (status, body) == (200, {"server_keys": []})
    await target.stop()
    status, body = await get(f"{notary.url}/_matrix/key/v2/query", tls_files, method="POST",
                             json={"server_keys": {target.name: {target_key: {"minimum_valid_until_ts": 0}}}})
    assert status == 200 and [r["server_name"] for r in body["server_keys"]] == [target.name]
