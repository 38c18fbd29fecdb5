"""matrix-js-sdk's Rust crypto (matrix-sdk-crypto-wasm) against ChatGO's E2EE endpoints.

Each test runs one part of tests/interop/js/e2ee.mjs in its own node process (see
tests/interop/test_js_sdk.py for how scenarios run): encrypted messages both ways, a key
backup restored on a second device, and cross-signing bootstrapped then replaced (behind
password UIA).
"""

from __future__ import annotations

from tests.interop.test_js_sdk import base_url, node, run_scenario, users  # noqa: F401  (fixtures)


async def run_part(node, base_url, tmp_path, part: str) -> dict:  # noqa: F811
    return await run_scenario(node, "e2ee.mjs", tmp_path, baseUrl=base_url, part=part, **users("alice", "bob"))


async def test_js_sdk_rust_crypto_clients_exchange_encrypted_messages(node, base_url, alice, bob, tmp_path):  # noqa: F811
    r = await run_part(node, base_url, tmp_path, "messages")

    assert r["encryptedOnAlice"] is True and r["encryptedOnBob"] is True
    hello, reply = r["bobGotHello"], r["aliceGotReply"]
    # On the wire m.room.encrypted with Megolm; in the client the original message.
    for got in (hello, reply):
        assert (got["wireType"], got["type"], got["algorithm"]) == (
            "m.room.encrypted", "m.room.message", "m.megolm.v1.aes-sha2")
        assert got["senderCurve25519"] is True
    assert (hello["sender"], hello["body"]) == (r["aliceId"], "secret hello bob")
    assert (reply["sender"], reply["body"]) == (r["bobId"], "secret hi alice")
    # The SDK announced the decryptions (a first failure may precede the key's arrival).
    assert any(d["ok"] for d in r["bobDecryptedEvents"]), r["bobDecryptedEvents"]
    assert any(d["ok"] for d in r["aliceDecryptedEvents"]), r["aliceDecryptedEvents"]
    assert r["bobDeviceId"] in r["bobDevicesOnAlice"]
    assert r["aliceDeviceId"] in r["aliceDevicesOnBob"]


async def test_js_sdk_rust_crypto_key_backup_round_trip(node, base_url, alice, bob, tmp_path):  # noqa: F811
    r = await run_part(node, base_url, tmp_path, "backup")

    info = r["serverInfo"]
    assert (info["version"], info["algorithm"]) == (r["version"], "m.megolm_backup.v1.curve25519-aes-sha2")
    assert info["count"] >= 1 and info["etag"]
    assert "@alice:test.local" in info["signed"]  # auth_data signed by the creating device
    assert r["serverSessions"].get(r["roomId"]), r["serverSessions"]

    # The second device trusts the backup because it holds its decryption key (it cannot
    # trust the first device's signature: there is no cross-signing in this part).
    assert (r["check"]["version"], r["check"]["matchesDecryptionKey"]) == (r["version"], True)
    assert r["restored"]["imported"] >= 1 and r["restored"]["total"] >= r["restored"]["imported"]
    assert r["activeOnSecond"] == r["version"]
    assert len(set(r["devices"])) == 2
    assert r["onSecond"]["body"] == "backed-up secret"
    assert r["onSecond"]["type"] == "m.room.message"


async def test_js_sdk_rust_crypto_bootstraps_cross_signing(node, base_url, alice, bob, tmp_path):  # noqa: F811
    r = await run_part(node, base_url, tmp_path, "crossSigning")

    assert r["statusBefore"]["publicKeysOnDevice"] is False
    assert r["onBobBefore"] == {"known": False, "needsUserApproval": False, "deviceSignedByOwner": False}
    status = r["status"]
    assert status["publicKeysOnDevice"] is True
    assert status["privateKeysCachedLocally"] == {"masterKey": True, "selfSigningKey": True, "userSigningKey": True}
    assert r["ready"] is True
    assert r["masterKeyId"] and r["selfSigningKeyId"]
    assert r["ownDevice"] == {"signedByOwner": True, "crossSigningVerified": True}
    # A first upload may skip UIA (the spec allows it); if asked, the password answered it.
    assert r["firstAuth"]["uia"] == "not required" or "m.login.password" in str(r["firstAuth"]["uia"]["flows"])

    # What another user reads through keys/query: the public master and self-signing keys
    # (not the user-signing key), and alice's device signed by her self-signing key.
    q = r["queried"]
    assert q["master"]["usage"] == ["master"]
    assert list(q["master"]["keys"].values()) == [r["masterKeyId"]]
    assert q["selfSigning"]["usage"] == ["self_signing"]
    assert list(q["selfSigning"]["keys"].values()) == [r["selfSigningKeyId"]]
    assert q["userSigningVisible"] is False
    assert f"ed25519:{r['selfSigningKeyId']}" in q["deviceSignatures"]
    # bob's crypto learnt it by itself, through device_lists.changed and keys/query.
    assert r["onBob"] == {"known": True, "needsUserApproval": False, "deviceSignedByOwner": True}

    # Replacing the master key must go through UIA, which the password completes; bob then
    # sees alice's identity change (it was pinned on first use).
    uia = r["resetAuth"]["uia"]
    assert uia != "not required", "keys/device_signing/upload replaced a master key without UIA"
    assert uia["session"] is True and any("m.login.password" in f["stages"] for f in uia["flows"])
    assert r["newMasterKeyId"] and r["newMasterKeyId"] != r["masterKeyId"]
    assert list(r["queriedAfterReset"]["master"]["keys"].values()) == [r["newMasterKeyId"]]
    assert r["onBobAfterReset"]["needsUserApproval"] is True
