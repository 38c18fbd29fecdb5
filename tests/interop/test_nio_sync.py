"""matrix-nio's sync against ChatGO: its response schema validates and messages arrive live."""

import asyncio

from nio import AsyncClient, AsyncClientConfig, RoomMessageText, SyncResponse

import pytest


@pytest.fixture
async def url(client):
    return str(client.http.make_url("")).rstrip("/")


async def registered(url, name):
    nio = AsyncClient(url, config=AsyncClientConfig(store_sync_tokens=False, encryption_enabled=False))
    await nio.register(name, f"pw-{name}-123")
    return nio


async def test_message_reaches_the_other_users_sync(url):
    alice, bob = await registered(url, "salice"), await registered(url, "sbob")
    try:
        created = await alice.room_create(invite=["@sbob:test.local"])
        first = await bob.sync(timeout=0)
        assert isinstance(first, SyncResponse), first
        assert created.room_id in first.rooms.invite
        await bob.join(created.room_id)
        joined = await bob.sync(timeout=0, since=first.next_batch)
        assert created.room_id in joined.rooms.join

        waiting = asyncio.create_task(bob.sync(timeout=10000, since=joined.next_batch))
        await asyncio.sleep(0.2)
        await alice.room_send(created.room_id, "m.room.message", {"msgtype": "m.text", "body": "live!"})
        live = await asyncio.wait_for(waiting, 5)
        assert isinstance(live, SyncResponse), live
        events = live.rooms.join[created.room_id].timeline.events
        assert [e.body for e in events if isinstance(e, RoomMessageText)] == ["live!"]
    finally:
        await alice.close()
        await bob.close()
