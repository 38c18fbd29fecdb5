"""E2EE key endpoints: upload, query, claim, changes, cross-signing, signatures, key backup."""

from signedjson.key import encode_verify_key_base64, generate_signing_key, get_verify_key
from signedjson.sign import sign_json

from tests.api.test_sync import V3, sync
from tests.api.test_sync_ephemeral import shared_room

PASSWORD_AUTH = {"type": "m.login.password", "password": "s3cret-pass"}


async def device_of(c):
    status, body = await c.get(f"{V3}/account/whoami")
    return body["user_id"], body["device_id"]


def device_keys(user_id, device_id, key=None):
    key = key or generate_signing_key(device_id)
    keys = {"user_id": user_id, "device_id": device_id,
            "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
            "keys": {f"curve25519:{device_id}": "curve" + device_id,
                     f"ed25519:{device_id}": encode_verify_key_base64(get_verify_key(key))}}
    return sign_json(keys, user_id, key), key


def cross_signing_key(user_id, usage, signer=None):
    key = generate_signing_key("x")
    public = encode_verify_key_base64(get_verify_key(key))
    key.version = public  # the key ID of a cross-signing key is its public key
    body = {"user_id": user_id, "usage": [usage], "keys": {f"ed25519:{public}": public}}
    if signer is not None:
        body = sign_json(body, user_id, signer)
    return body, key, public


async def test_upload_query_claim_and_counts(alice, bob):
    room = await shared_room(alice, bob)
    alice_id, alice_device = await device_of(alice)
    keys, _ = device_keys(alice_id, alice_device)
    status, body = await alice.post(f"{V3}/keys/upload", {
        "device_keys": keys,
        "one_time_keys": {"signed_curve25519:AAAA": {"key": "k1"}, "signed_curve25519:AAAB": {"key": "k2"}},
        "fallback_keys": {"signed_curve25519:FFFF": {"key": "fb", "fallback": True}},
    })
    assert status == 200, body
    assert body["one_time_key_counts"] == {"signed_curve25519": 2}
    status, body = await bob.post(f"{V3}/keys/query", {"device_keys": {alice_id: []}})
    got = body["device_keys"][alice_id][alice_device]
    assert got["keys"] == keys["keys"] and got["signatures"] == keys["signatures"]
    # Two one-time keys, then the fallback key, which stays available.
    claimed = []
    for _ in range(4):
        status, body = await bob.post(f"{V3}/keys/claim",
                                      {"one_time_keys": {alice_id: {alice_device: "signed_curve25519"}}})
        claimed.append(next(iter(body["one_time_keys"][alice_id][alice_device])))
    assert sorted(claimed[:2]) == ["signed_curve25519:AAAA", "signed_curve25519:AAAB"]
    assert claimed[2:] == ["signed_curve25519:FFFF"] * 2
    body = await sync(alice)
    assert body["device_one_time_keys_count"] == {"signed_curve25519": 0}
    assert body["device_unused_fallback_key_types"] == []
    assert room in body["rooms"]["join"]


async def test_upload_refuses_bad_keys(alice):
    user_id, device_id = await device_of(alice)
    keys, _ = device_keys(user_id, device_id)
    status, body = await alice.post(f"{V3}/keys/upload", {"device_keys": dict(keys, signatures={user_id: "x"})})
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")
    status, body = await alice.post(f"{V3}/keys/upload", {"device_keys": {"user_id": user_id, "device_id": device_id}})
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")
    # A self-signature that does not verify is stored all the same, as Synapse does: clients
    # verify the keys they fetch (sytest uploads keys with a dummy signature).
    forged = dict(keys, algorithms=["tampered"])
    status, body = await alice.post(f"{V3}/keys/upload", {"device_keys": forged})
    assert status == 200, body
    status, body = await alice.post(f"{V3}/keys/query", {"device_keys": {user_id: []}})
    queried = body["device_keys"][user_id][device_id]
    assert queried["algorithms"] == ["tampered"]
    assert "unsigned" in queried  # always there (Synapse; sytest checks it)
    other, _ = device_keys(user_id, "OTHERDEVICE")
    status, body = await alice.post(f"{V3}/keys/upload", {"device_keys": other})
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    status, body = await alice.post(f"{V3}/keys/upload", {"one_time_keys": {"nocolon": {}}})
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")
    assert (await alice.post(f"{V3}/keys/upload", {"one_time_keys": {"a:1": "x"}}))[0] == 200
    status, body = await alice.post(f"{V3}/keys/upload", {"one_time_keys": {"a:1": "y"}})
    assert status == 400
    status, body = await alice.post(f"{V3}/keys/query", {"device_keys": []})
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")


async def test_device_list_changes_in_sync_and_keys_changes(alice, bob):
    await shared_room(alice, bob)
    token = (await sync(bob))["next_batch"]
    alice_id, alice_device = await device_of(alice)
    keys, _ = device_keys(alice_id, alice_device)
    await alice.post(f"{V3}/keys/upload", {"device_keys": keys})
    body = await sync(bob, token)
    assert alice_id in body["device_lists"]["changed"]
    status, changes = await bob.get(f"{V3}/keys/changes?from={token}&to={body['next_batch']}")
    assert status == 200 and alice_id in changes["changed"]
    status, changes = await bob.get(f"{V3}/keys/changes?from={token}")
    assert (status, changes["errcode"]) == (400, "M_MISSING_PARAM")


async def test_cross_signing_upload_query_and_signatures(alice, bob):
    alice_id, alice_device = await device_of(alice)
    keys, device_key = device_keys(alice_id, alice_device)
    await alice.post(f"{V3}/keys/upload", {"device_keys": keys})
    master, master_key, master_public = cross_signing_key(alice_id, "master")
    self_signing, self_key, self_public = cross_signing_key(alice_id, "self_signing", master_key)
    user_signing, user_key, _ = cross_signing_key(alice_id, "user_signing", master_key)
    # The first upload needs no UIA.
    status, body = await alice.post(f"{V3}/keys/device_signing/upload", {
        "master_key": master, "self_signing_key": self_signing, "user_signing_key": user_signing})
    assert status == 200, body
    # Replacing the master key does.
    new_master, _, _ = cross_signing_key(alice_id, "master")
    status, body = await alice.post(f"{V3}/keys/device_signing/upload", {"master_key": new_master})
    assert status == 401 and "flows" in body
    # A self-signing key not signed by the master key is refused.
    unsigned, _, _ = cross_signing_key(alice_id, "self_signing")
    status, body = await alice.post(f"{V3}/keys/device_signing/upload", {"self_signing_key": unsigned})
    assert (status, body["errcode"]) == (400, "M_INVALID_SIGNATURE")

    # Sign the device with the self-signing key.
    signed_device = sign_json({k: v for k, v in keys.items() if k != "signatures"}, alice_id, self_key)
    status, body = await alice.post(f"{V3}/keys/signatures/upload", {alice_id: {alice_device: signed_device}})
    assert (status, body["failures"]) == (200, {})
    status, body = await bob.post(f"{V3}/keys/query", {"device_keys": {alice_id: []}})
    assert body["master_keys"][alice_id]["keys"] == master["keys"]
    assert body["self_signing_keys"][alice_id]["keys"] == self_signing["keys"]
    assert alice_id not in body["user_signing_keys"]  # only its owner sees it
    signatures = body["device_keys"][alice_id][alice_device]["signatures"][alice_id]
    assert f"ed25519:{self_public}" in signatures and f"ed25519:{alice_device}" in signatures
    status, own = await alice.post(f"{V3}/keys/query", {"device_keys": {alice_id: []}})
    assert own["user_signing_keys"][alice_id]["keys"] == user_signing["keys"]

    # A forged signature is reported as a failure, not stored.
    forged = sign_json({k: v for k, v in keys.items() if k != "signatures"}, alice_id, generate_signing_key("zz"))
    forged["signatures"][alice_id] = {f"ed25519:{self_public}": next(iter(forged["signatures"][alice_id].values()))}
    status, body = await alice.post(f"{V3}/keys/signatures/upload", {alice_id: {alice_device: forged}})
    assert body["failures"][alice_id][alice_device]["errcode"] == "M_INVALID_SIGNATURE"

    # Bob verifies alice: his user-signing key signs her master key.
    bob_id, _ = await device_of(bob)
    bob_master, bob_master_key, _ = cross_signing_key(bob_id, "master")
    bob_user_signing, bob_user_key, _ = cross_signing_key(bob_id, "user_signing", bob_master_key)
    await bob.post(f"{V3}/keys/device_signing/upload", {"master_key": bob_master, "user_signing_key": bob_user_signing})
    signed_master = sign_json(dict(master), bob_id, bob_user_key)
    status, body = await bob.post(f"{V3}/keys/signatures/upload", {alice_id: {master_public: signed_master}})
    assert (status, body["failures"]) == (200, {})
    status, body = await bob.post(f"{V3}/keys/query", {"device_keys": {alice_id: []}})
    assert bob_id in body["master_keys"][alice_id]["signatures"]


async def test_key_backup_round_trip(alice):
    base = f"{V3}/room_keys"
    status, body = await alice.get(f"{base}/version")
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    status, body = await alice.post(f"{base}/version", {"algorithm": "m.megolm_backup.v1.curve25519-aes-sha2",
                                                         "auth_data": {"public_key": "abc"}})
    assert status == 200, body
    version = body["version"]
    key = {"first_message_index": 5, "forwarded_count": 1, "is_verified": False, "session_data": {"v": 1}}
    status, body = await alice.put(f"{base}/keys/!room:test.local/sess1?version={version}", key)
    assert status == 200 and body["count"] == 1
    etag = body["etag"]
    # A worse key (higher index) does not replace it; a better one (verified) does.
    worse = dict(key, first_message_index=9, session_data={"v": 2})
    status, body = await alice.put(f"{base}/keys/!room:test.local/sess1?version={version}", worse)
    assert body["etag"] == etag
    better = dict(key, is_verified=True, session_data={"v": 3})
    status, body = await alice.put(f"{base}/keys/!room:test.local?version={version}",
                                   {"sessions": {"sess1": better}})
    assert body["etag"] != etag and body["count"] == 1
    status, body = await alice.put(f"{base}/keys?version={version}",
                                   {"rooms": {"!other:test.local": {"sessions": {"s2": key}}}})
    assert body["count"] == 2
    status, body = await alice.get(f"{base}/keys?version={version}")
    assert body["rooms"]["!room:test.local"]["sessions"]["sess1"]["session_data"] == {"v": 3}
    status, body = await alice.get(f"{base}/keys/!room:test.local/sess1?version={version}")
    assert body["is_verified"] is True
    status, body = await alice.get(f"{base}/version")
    assert body["version"] == version and body["count"] == 2 and body["auth_data"] == {"public_key": "abc"}
    # A newer version makes the old one read-only.
    status, newer = await alice.post(f"{base}/version", {"algorithm": "m.megolm_backup.v1.curve25519-aes-sha2",
                                                          "auth_data": {"public_key": "def"}})
    status, body = await alice.put(f"{base}/keys/!room:test.local/sess9?version={version}", key)
    assert (status, body["errcode"], body["current_version"]) == (403, "M_WRONG_ROOM_KEYS_VERSION", newer["version"])
    status, body = await alice.delete(f"{base}/keys/!room:test.local?version={version}")
    assert body["count"] == 1
    assert (await alice.delete(f"{base}/version/{version}"))[0] == 200
    status, body = await alice.get(f"{base}/version/{version}")
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    status, body = await alice.put(f"{base}/version/{newer['version']}",
                                   {"algorithm": "other", "auth_data": {}})
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    status, body = await alice.put(f"{base}/keys/!r:test.local/s?version={newer['version']}",
                                   dict(key, first_message_index="0"))
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")


async def test_backup_auth_data_is_kept_as_sent(alice):
    # The spec describes an object; Synapse keeps any JSON value (sytest sends a string).
    base = f"{V3}/room_keys"
    status, body = await alice.post(f"{base}/version", {"algorithm": "m.megolm_backup.v1", "auth_data": "opaque"})
    assert status == 200, body
    status, info = await alice.get(f"{base}/version/{body['version']}")
    assert info["auth_data"] == "opaque"
    status, _ = await alice.put(f"{base}/version/{body['version']}",
                                {"algorithm": "m.megolm_backup.v1", "auth_data": "other", "version": body["version"]})
    assert status == 200
    assert (await alice.get(f"{base}/version"))[1]["auth_data"] == "other"
    status, error = await alice.post(f"{base}/version", {"algorithm": "m.megolm_backup.v1"})
    assert (status, error["errcode"]) == (400, "M_MISSING_PARAM")
    # session_data too.
    key = {"first_message_index": 3, "forwarded_count": 0, "is_verified": False, "session_data": "opaque"}
    status, _ = await alice.put(f"{base}/keys/!abcd/1234?version={body['version']}", key)
    assert status == 200
    assert (await alice.get(f"{base}/keys/!abcd/1234?version={body['version']}"))[1] == key
    status, error = await alice.put(f"{base}/keys/!abcd/1234?version={body['version']}", dict(key, session_data=None))
    assert (status, error["errcode"]) == (400, "M_BAD_JSON")


async def test_cross_signing_upload_under_unstable(alice):
    user_id, _ = await device_of(alice)
    master = {"user_id": user_id, "usage": ["master"],
              "keys": {"ed25519:nqOvzeuGWT/sRx3h7+MHoInYj3Uk2LD/unI9kDYcHwk": "nqOvzeuGWT/sRx3h7+MHoInYj3Uk2LD/unI9kDYcHwk"}}
    status, body = await alice.post("/_matrix/client/unstable/keys/device_signing/upload", {"master_key": master})
    assert status == 200, body
    status, body = await alice.post(f"{V3}/keys/query", {"device_keys": {user_id: []}})
    assert body["master_keys"][user_id] == master


async def test_user_signing_changes_are_told_to_their_owner_only(alice, bob):
    await shared_room(alice, bob)
    alice_id, _ = await device_of(alice)
    bob_id, _ = await device_of(bob)
    master, master_key, _ = cross_signing_key(alice_id, "master")
    self_signing, _, _ = cross_signing_key(alice_id, "self_signing", master_key)
    bob_master, _, bob_master_public = cross_signing_key(bob_id, "master")
    await bob.post(f"{V3}/keys/device_signing/upload", {"master_key": bob_master})
    await alice.post(f"{V3}/keys/device_signing/upload", {"master_key": master, "self_signing_key": self_signing})
    alice_since, bob_since = (await sync(alice))["next_batch"], (await sync(bob))["next_batch"]
    # A new user-signing key: Alice's other devices re-query her keys; Bob never sees it.
    user_signing, user_key, _ = cross_signing_key(alice_id, "user_signing", master_key)
    assert (await alice.post(f"{V3}/keys/device_signing/upload", {"user_signing_key": user_signing}))[0] == 200
    body = await sync(alice, alice_since)
    assert alice_id in body["device_lists"]["changed"]
    alice_since = body["next_batch"]
    body = await sync(bob, bob_since)
    assert alice_id not in body.get("device_lists", {}).get("changed", [])
    bob_since = body["next_batch"]
    # Alice signs Bob's master key: she re-queries Bob's keys; Bob is told nothing.
    signed = sign_json(dict(bob_master), alice_id, user_key)
    status, body = await alice.post(f"{V3}/keys/signatures/upload", {bob_id: {bob_master_public: signed}})
    assert (status, body["failures"]) == (200, {})
    body = await sync(alice, alice_since)
    assert bob_id in body["device_lists"]["changed"]
    status, changes = await alice.get(f"{V3}/keys/changes?from={alice_since}&to={body['next_batch']}")
    assert bob_id in changes["changed"]
    body = await sync(bob, bob_since)
    assert alice_id not in body.get("device_lists", {}).get("changed", [])
