"""The byte ceilings of the in-memory caches (config `caches`): kept, and with them far too
small for the data, the server reads the database instead and answers right."""

import pytest

from homeserver.web_app import make_web_app
from tests.api.test_sync_from_memory import send, shared_room, sync
from tests.prometheus import scrape


# push_rules: a user who kept the default rules takes about 300 bytes (their ruleset is the
# shared default template, push/rules.py): 700 holds two of the four users below.
CEILINGS = {"recent_events": 6_000, "sync_memberships": 1_000, "events": 8_000, "room_snapshots": 6_000,
            "room_servers": 500, "room_wakeups": 1_000, "push_room_state": 2_000, "push_rules": 700,
            "access_tokens": 1_500, "unread_counts": 1_200,
            # ignore_lists: about 300 bytes a user who ignores nobody: 700 holds two.
            "ignore_lists": 700}


@pytest.fixture
def config_overrides():
    # Ceilings far too small for what the test does: every cache has to drop entries.
    return {"caches": CEILINGS}


async def test_tiny_ceilings_are_kept_and_syncs_stay_right(alice, bob, services, aiohttp_client):
    room = await shared_room(alice, bob)
    token = (await sync(bob))["next_batch"]
    sent = [await send(alice, room, f"message {i} " + "x" * 200) for i in range(12)]
    body = await sync(bob, token, sync_filter={"room": {"timeline": {"limit": 20}}})
    assert [e["event_id"] for e in body["rooms"]["join"][room]["timeline"]["events"]] == sent
    fresh = await sync(bob, sync_filter={"room": {"timeline": {"limit": 5}}})
    assert [e["event_id"] for e in fresh["rooms"]["join"][room]["timeline"]["events"]] == sent[-5:]
    metrics = await scrape(await aiohttp_client(make_web_app(services, ["metrics"])))
    for cache, ceiling in CEILINGS.items():
        assert metrics("chatgo_cache_max_bytes", cache=cache) == ceiling, cache
        assert metrics("chatgo_cache_bytes", cache=cache) <= ceiling, cache
    assert metrics("chatgo_cache_evictions_total", cache="recent_events") > 0
    assert metrics("chatgo_cache_evictions_total", cache="events") > 0


async def test_every_cache_stays_within_its_ceiling_under_load(client, services, aiohttp_client):
    users = [client.with_token((await client.register(f"user{i}"))["access_token"]) for i in range(4)]
    rooms = []
    for i, owner in enumerate(users):
        room = await shared_room(owner, users[(i + 1) % 4])
        rooms.append(room)
        for j in range(6):
            await send(owner, room, f"{j} " + "y" * 150)
    for _ in range(4):  # more devices of user0, more tokens than fit
        status, body = await client.post("/_matrix/client/v3/login", {
            "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "user0"},
            "password": "s3cret-pass"})
        assert status == 200, body
        assert (await client.get("/_matrix/client/v3/account/whoami", token=body["access_token"]))[0] == 200
    for i, user in enumerate(users):
        body = await sync(user)
        assert set(body["rooms"]["join"]) == {rooms[i], rooms[(i - 1) % 4]}
        timeline = body["rooms"]["join"][rooms[i]]["timeline"]["events"]
        assert timeline[-1]["content"]["body"].startswith("5 ")
    metrics = await scrape(await aiohttp_client(make_web_app(services, ["metrics"])))
    evicted = set()
    for cache, ceiling in CEILINGS.items():
        assert metrics("chatgo_cache_bytes", cache=cache) <= ceiling, cache
        if metrics("chatgo_cache_evictions_total", cache=cache) > 0:
            evicted.add(cache)
    assert {"events", "room_snapshots", "recent_events", "access_tokens", "push_rules", "unread_counts",
            "ignore_lists"} <= evicted, \
        evicted
