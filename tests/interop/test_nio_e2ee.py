"""Two matrix-nio clients with end-to-end encryption (nio[e2e], vodozemac) exchange messages in
an encrypted room through ChatGO: device keys, one-time key claims, Olm to-device messages
carrying the Megolm session, and decryption on the other side."""

import asyncio

import pytest
from nio import AsyncClient, AsyncClientConfig, MegolmEvent, RoomMessageText

from tests.interop.test_nio_sync import url  # noqa: F401  (fixture)

nio_crypto = pytest.importorskip("nio.crypto")
if not getattr(nio_crypto, "ENCRYPTION_ENABLED", False):
    pytest.skip("matrix-nio was installed without its [e2e] extra", allow_module_level=True)


async def e2e_client(url, name, store):
    store.mkdir()
    client = AsyncClient(url, store_path=str(store),
                         config=AsyncClientConfig(store_sync_tokens=True, encryption_enabled=True))
    response = await client.register(name, f"pw-{name}-123")
    assert response.user_id, response
    await client.keys_upload()
    return client


async def sync_until(client, predicate, tries=20):
    for _ in range(tries):
        response = await client.sync(timeout=500, full_state=False)
        if client.should_upload_keys:
            await client.keys_upload()
        if client.should_query_keys:
            await client.keys_query()
        if client.should_claim_keys:
            await client.keys_claim(client.get_users_for_key_claiming())
        found = predicate(response)
        if found:
            return found
    raise AssertionError("condition not reached")


def decrypted_texts(room_id):
    def check(response):
        room = response.rooms.join.get(room_id)
        if room is None:
            return None
        texts = [e.body for e in room.timeline.events if isinstance(e, RoomMessageText)]
        undecrypted = [e for e in room.timeline.events if isinstance(e, MegolmEvent)]
        assert not undecrypted, f"could not decrypt {undecrypted}"
        return texts or None
    return check


async def test_two_nio_clients_exchange_encrypted_messages(url, tmp_path):  # noqa: F811
    alice = await e2e_client(url, "ealice", tmp_path / "alice")
    bob = await e2e_client(url, "ebob", tmp_path / "bob")
    try:
        created = await alice.room_create(
            invite=["@ebob:test.local"],
            initial_state=[{"type": "m.room.encryption", "state_key": "",
                            "content": {"algorithm": "m.megolm.v1.aes-sha2"}}],
        )
        room_id = created.room_id
        await bob.sync(timeout=0)
        await bob.join(room_id)
        await sync_until(alice, lambda r: "@ebob:test.local" in alice.rooms[room_id].users or None)
        await sync_until(bob, lambda r: room_id in bob.rooms or None)
        assert alice.rooms[room_id].encrypted

        sent = await alice.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "secret hello"},
                                     ignore_unverified_devices=True)
        assert sent.event_id, sent
        # On the wire it is an m.room.encrypted event: the server never sees the text.
        status_ok = await bob.room_messages(room_id, start="", limit=5)
        assert any(getattr(e, "source", {}).get("type") == "m.room.encrypted" for e in status_ok.chunk)

        texts = await sync_until(bob, decrypted_texts(room_id))
        assert texts == ["secret hello"]

        await bob.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "secret reply"},
                            ignore_unverified_devices=True)
        texts = await sync_until(alice, lambda r: "secret reply" in (decrypted_texts(room_id)(r) or []) or None)
        assert texts is True
    finally:
        await alice.close()
        await bob.close()
