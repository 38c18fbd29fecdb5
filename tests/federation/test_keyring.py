"""The keyring: fetching keys over TLS, caching them in PostgreSQL, expiry, notaries, refusals."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from signedjson.key import encode_verify_key_base64, generate_signing_key, get_verify_key
from signedjson.sign import sign_json

from federation.keys import Keyring, LocalKeys
from homeserver.core.server_keys import MAX_KEY_VALIDITY_MS
from homeserver.core.signing import InvalidSignature
from storage.server_keys import ServerKeyStore
from tests.federation.conftest import FakeClock, bound_socket, make_federation_client

HOUR = 3600 * 1000
SERVER_PATH = "/_matrix/key/v2/server"
QUERY_PATH = "/_matrix/key/v2/query"


def key_id(key) -> str:
    return f"ed25519:{key.version}"


def key_response(name: str, key, valid_until_ts: int, *, sign_with=None, old: dict | None = None) -> dict[str, Any]:
    response = {
        "server_name": name, "valid_until_ts": valid_until_ts,
        "verify_keys": {key_id(key): {"key": encode_verify_key_base64(get_verify_key(key))}},
        "old_verify_keys": old or {},
    }
    signer = sign_with or key
    signed = sign_json(response, name, signer)
    if sign_with is not None:  # claim the listed key ID, but sign with another key
        signed["signatures"][name] = {key_id(key): signed["signatures"][name][key_id(signer)]}
    return signed


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def make_keyring(db, tls_files, clock):
    clients = []

    def make(**federation) -> Keyring:
        client, config = make_federation_client(tls_files, **federation)
        clients.append(client)
        local = LocalKeys(config.server_name, generate_signing_key("me"), config.federation, clock)
        return Keyring(ServerKeyStore(db), client, local, clock, config.federation.trusted_key_servers)

    yield make
    for client in clients:
        await client.close()


async def key_stub(stubs, clock, key, *, validity_ms=HOUR, **kw):
    """A server publishing `key`, valid for `validity_ms` from the (fake) now."""
    stub = stubs()
    stub.validity_ms = validity_ms
    stub.route("GET", SERVER_PATH, lambda request: key_response(stub.name, key, clock.now + stub.validity_ms, **kw))
    return await stub.start()


async def test_fetch_verify_cache_and_expiry(stubs, make_keyring, clock, db):
    key = generate_signing_key("abc")
    stub = await key_stub(stubs, clock, key)
    keyring = make_keyring()
    signed = sign_json({"hello": "world"}, stub.name, key)

    await keyring.verify_json_for_server(stub.name, signed, clock.now)
    assert stub.hits[SERVER_PATH] == 1
    # Cached in PostgreSQL: no more requests, and a new keyring on the same database knows it.
    await keyring.verify_json_for_server(stub.name, signed, clock.now + HOUR // 2)
    await make_keyring().verify_json_for_server(stub.name, signed, clock.now)
    assert stub.hits[SERVER_PATH] == 1
    stored = await ServerKeyStore(db).get_keys(stub.name)
    assert stored[key_id(key)].valid_until_ts == clock.now + HOUR

    # A signature needed beyond the cached validity makes the keyring ask again.
    clock.advance(2 * HOUR)
    await keyring.verify_json_for_server(stub.name, signed, clock.now)
    assert stub.hits[SERVER_PATH] == 2

    # Once the server is gone, the expired key is refused for recent checks, but still serves
    # room versions 1-4, which ignore key validity (minimum 0).
    await stub.stop()
    clock.advance(2 * HOUR)
    with pytest.raises(InvalidSignature, match="expired"):
        await keyring.verify_json_for_server(stub.name, signed, clock.now)
    await keyring.verify_json_for_server(stub.name, signed, 0)


async def test_validity_is_capped_at_seven_days(stubs, make_keyring, clock, db):
    key = generate_signing_key("long")
    stub = await key_stub(stubs, clock, key, validity_ms=365 * 24 * HOUR)
    keys = await make_keyring().get_keys(stub.name, [key_id(key)], clock.now)
    assert keys[key_id(key)].valid_until_ts == clock.now + MAX_KEY_VALIDITY_MS


async def test_wrong_signatures_are_refused(stubs, make_keyring, clock, db):
    key, other = generate_signing_key("abc"), generate_signing_key("zzz")
    stub = await key_stub(stubs, clock, key, sign_with=other)
    keyring = make_keyring()
    signed = sign_json({"a": 1}, stub.name, key)
    with pytest.raises(InvalidSignature, match="no key"):
        await keyring.verify_json_for_server(stub.name, signed, clock.now)
    assert stub.hits[SERVER_PATH] == 1
    assert await ServerKeyStore(db).get_keys(stub.name) == {}
    # A fetch that did not help is not repeated at once (forged requests cannot make us hammer)...
    with pytest.raises(InvalidSignature):
        await keyring.verify_json_for_server(stub.name, signed, clock.now)
    assert stub.hits[SERVER_PATH] == 1
    # ...but after a while it is.
    clock.advance(61_000)
    with pytest.raises(InvalidSignature):
        await keyring.verify_json_for_server(stub.name, signed, clock.now)
    assert stub.hits[SERVER_PATH] == 2


async def test_a_response_about_another_server_is_refused(stubs, make_keyring, clock, db):
    key = generate_signing_key("abc")
    stub = stubs()
    stub.route("GET", SERVER_PATH, lambda request: key_response("someone.else", key, clock.now + HOUR))
    await stub.start()
    assert await make_keyring().fetch_direct(stub.name) == {}


async def test_bad_signature_on_the_object_is_refused(stubs, make_keyring, clock):
    key = generate_signing_key("abc")
    stub = await key_stub(stubs, clock, key)
    keyring = make_keyring()
    signed = sign_json({"a": 1}, stub.name, key)
    with pytest.raises(InvalidSignature, match="bad signature"):
        await keyring.verify_json_for_server(stub.name, {**signed, "a": 2}, clock.now)
    with pytest.raises(InvalidSignature, match="not signed"):
        await keyring.verify_json_for_server(stub.name, {"a": 1}, clock.now)


async def test_old_keys_verify_what_they_signed_before_they_expired(stubs, make_keyring, clock):
    key, old = generate_signing_key("new"), generate_signing_key("old")
    expired_ts = clock.now - HOUR
    stub = await key_stub(stubs, clock, key, old={
        key_id(old): {"key": encode_verify_key_base64(get_verify_key(old)), "expired_ts": expired_ts}})
    keyring = make_keyring()
    signed = sign_json({"old": True}, stub.name, old)
    await keyring.verify_json_for_server(stub.name, signed, expired_ts - 1)
    with pytest.raises(InvalidSignature, match="expired"):
        await keyring.verify_json_for_server(stub.name, signed, clock.now)


async def test_concurrent_lookups_share_one_fetch(stubs, make_keyring, clock):
    key = generate_signing_key("abc")
    stub = await key_stub(stubs, clock, key)
    keyring = make_keyring()
    signed = sign_json({"a": 1}, stub.name, key)
    await asyncio.gather(*(keyring.verify_json_for_server(stub.name, signed, clock.now) for _ in range(10)))
    assert stub.hits[SERVER_PATH] == 1


async def test_our_own_keys_need_no_fetch(make_keyring, clock):
    keyring = make_keyring()
    local = keyring.local
    await keyring.verify_json_for_server(local.server_name, sign_json({"a": 1}, local.server_name, local.signing_key),
                                         clock.now)


def notary_stub(stubs, clock, notary_key, answers: dict[str, dict], *, sign_with=None):
    """A notary answering POST /query with `answers[server_name]`, countersigned."""
    stub = stubs()

    async def query(request):
        body = await request.json()
        out = []
        for server_name in body["server_keys"]:
            if server_name in answers:
                out.append(sign_json(dict(answers[server_name]), stub.name, sign_with or notary_key))
        return {"server_keys": out}

    stub.route("POST", QUERY_PATH, query)
    stub.route("GET", SERVER_PATH, lambda request: key_response(stub.name, notary_key, clock.now + HOUR))
    return stub


@pytest.mark.parametrize("configured_keys", [True, False], ids=["verify_keys", "fetched_notary_keys"])
async def test_notary_fallback_when_the_server_is_unreachable(stubs, make_keyring, clock, configured_keys):
    target_key, notary_key = generate_signing_key("t"), generate_signing_key("n")
    with bound_socket() as closed:
        target = f"localhost:{closed.getsockname()[1]}"
        notary = await notary_stub(stubs, clock, notary_key,
                                   {target: key_response(target, target_key, clock.now + HOUR)}).start()
        verify_keys = [{"key_id": key_id(notary_key), "key": encode_verify_key_base64(get_verify_key(notary_key))}]
        keyring = make_keyring(trusted_key_servers=[
            {"server_name": notary.name, "verify_keys": verify_keys if configured_keys else []}])
        await keyring.verify_json_for_server(target, sign_json({"a": 1}, target, target_key), clock.now)
    assert notary.hits[QUERY_PATH] == 1
    assert notary.hits.get(SERVER_PATH, 0) == (0 if configured_keys else 1)


async def test_a_notary_answer_without_its_valid_signature_is_refused(stubs, make_keyring, clock):
    target_key, notary_key = generate_signing_key("t"), generate_signing_key("n")
    with bound_socket() as closed:
        target = f"localhost:{closed.getsockname()[1]}"
        notary = await notary_stub(stubs, clock, notary_key,
                                   {target: key_response(target, target_key, clock.now + HOUR)},
                                   sign_with=generate_signing_key("n")).start()  # same ID, wrong key
        keyring = make_keyring(trusted_key_servers=[{"server_name": notary.name, "verify_keys": [
            {"key_id": key_id(notary_key), "key": encode_verify_key_base64(get_verify_key(notary_key))}]}])
        with pytest.raises(InvalidSignature, match="no key"):
            await keyring.verify_json_for_server(target, sign_json({"a": 1}, target, target_key), clock.now)
    assert notary.hits[QUERY_PATH] == 1


async def test_notary_answers_keep_each_key_and_honour_the_given_minimum(stubs, make_keyring, clock):
    """A key the origin server forgot is still vouched for when it meets the minimum asked
    (sytest: "Key notary server must not overwrite a valid key with a spurious result")."""
    key1, key2 = generate_signing_key("one"), generate_signing_key("two")
    expired = clock.now - 24 * HOUR
    stub = stubs()
    answers = [key_response(stub.name, key1, expired)]
    stub.route("GET", SERVER_PATH, lambda request: answers[-1])
    await stub.start()
    keyring = make_keyring()

    def listed(responses):
        return [sorted(r["verify_keys"]) for r in responses]

    assert listed(await keyring.key_responses_for(stub.name, {key_id(key1): 0})) == [[key_id(key1)]]
    assert stub.hits[SERVER_PATH] == 1
    # A given minimum in the past that the cached key meets: served from the cache.
    assert listed(await keyring.key_responses_for(stub.name, {key_id(key1): expired})) == [[key_id(key1)]]
    assert stub.hits[SERVER_PATH] == 1
    # A minimum past key 1's validity fetches again; the server now lists only key 2...
    answers.append(key_response(stub.name, key2, expired + 1000))
    assert listed(await keyring.key_responses_for(stub.name, {key_id(key1): clock.now})) == [[key_id(key1)]]
    assert stub.hits[SERVER_PATH] == 2
    # ...and key 1's own response is still the answer about key 1.
    assert listed(await keyring.key_responses_for(stub.name, {key_id(key1): expired})) == [[key_id(key1)]]
    assert stub.hits[SERVER_PATH] == 2
    # No key named, no minimum: the freshest response decides; expired, it is fetched again.
    answers.append(key_response(stub.name, key2, clock.now + HOUR))
    assert listed(await keyring.key_responses_for(stub.name, {})) == [[key_id(key2)], [key_id(key1)]]
    assert stub.hits[SERVER_PATH] == 3
    assert listed(await keyring.key_responses_for(stub.name, {})) == [[key_id(key2)], [key_id(key1)]]
    assert stub.hits[SERVER_PATH] == 3
