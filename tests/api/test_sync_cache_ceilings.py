"""The byte ceilings of the caches /sync reads (config `caches`): kept, and with them far too
small for a room's history, syncs read the database and stay right."""

import pytest

from homeserver.app import make_web_app
from tests.api.test_sync_from_memory import send, shared_room, sync
from tests.prometheus import scrape


@pytest.fixture
def config_overrides():
    # Ceilings far too small for the room's history: reads fall back to the database.
    return {"caches": {"recent_events": 6_000, "sync_memberships": 1_000}}


async def test_tiny_ceilings_are_kept_and_syncs_stay_right(alice, bob, services, aiohttp_client):
    room = await shared_room(alice, bob)
    token = (await sync(bob))["next_batch"]
    sent = [await send(alice, room, f"message {i} " + "x" * 200) for i in range(12)]
    body = await sync(bob, token, sync_filter={"room": {"timeline": {"limit": 20}}})
    assert [e["event_id"] for e in body["rooms"]["join"][room]["timeline"]["events"]] == sent
    fresh = await sync(bob, sync_filter={"room": {"timeline": {"limit": 5}}})
    assert [e["event_id"] for e in fresh["rooms"]["join"][room]["timeline"]["events"]] == sent[-5:]
    metrics = await scrape(await aiohttp_client(make_web_app(services, ["metrics"])))
    assert metrics("chatgo_cache_max_bytes", cache="recent_events") == 6_000
    assert 0 < metrics("chatgo_cache_bytes", cache="recent_events") <= 6_000
    assert metrics("chatgo_cache_evictions_total", cache="recent_events") > 0
    assert metrics("chatgo_cache_bytes", cache="sync_memberships") <= 1_000
