"""Delayed events (MSC4140): scheduled sends through PUT .../send and .../state with
`org.matrix.msc4140.delay`, their management endpoints, and the scheduler that sends them,
across a restart and with two schedulers on one database."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import aiohttp
import pytest

from homeserver.app import build_services
from homeserver.services.rooms.delayed_events import CLAIM_MS, TXN_PREFIX
from homeserver.web_app import make_web_app
from storage.aux_stream import AuxStreamStore
from storage.delayed_events import DelayedEventStore
from storage.events import EventStore
from tests.api.ratelimits import assert_limited, limits
from tests.conftest import make_test_config
from tests.server_fixtures import MatrixClient
from tests.test_cli import free_port, generate, run_server, stop, wait_for

V3 = "/_matrix/client/v3"
MGMT = "/_matrix/client/unstable/org.matrix.msc4140/delayed_events"
DELAYED = {"delayed_events": {"max_event_delay_duration": "1h", "max_delayed_events_per_user": 5}}


@pytest.fixture
def config_overrides() -> dict:
    return DELAYED


@pytest.fixture
async def scheduler(services):
    """The server's scheduler, running as under `chatgo run`."""
    services.delayed_events.start()
    yield services.delayed_events
    await services.delayed_events.stop()


@pytest.fixture
async def room(alice, bob) -> str:
    """A public room alice created and bob joined, where anyone may send state."""
    status, body = await alice.post(f"{V3}/createRoom", {
        "preset": "public_chat", "power_level_content_override": {"state_default": 0}})
    assert status == 200, body
    room_id = body["room_id"]
    assert (await bob.post(f"{V3}/rooms/{room_id}/join", {}))[0] == 200
    return room_id


async def schedule(user: MatrixClient, room_id: str, delay: int | str, body: str, *, txn: str | None = None,
                   event_type: str = "m.room.message") -> tuple[int, dict]:
    txn = txn or uuid.uuid4().hex
    return await user.put(f"{V3}/rooms/{room_id}/send/{event_type}/{txn}?org.matrix.msc4140.delay={delay}",
                          {"msgtype": "m.text", "body": body})


async def scheduled(user: MatrixClient, room_id: str, delay: int, body: str) -> str:
    status, answer = await schedule(user, room_id, delay, body)
    assert status == 200, answer
    assert list(answer) == ["delay_id"]
    return answer["delay_id"]


async def listed(user: MatrixClient) -> list[dict]:
    status, body = await user.get(MGMT)
    assert status == 200, body
    return body["delayed_events"]


async def since_now(user: MatrixClient) -> str:
    status, body = await user.get(f"{V3}/sync?timeout=0")
    assert status == 200, body
    return body["next_batch"]


async def timeline_until(user: MatrixClient, room_id: str, since: str, bodies: set[str],
                         deadline_s: float = 8) -> list[dict]:
    """Long-poll /sync until messages with all of `bodies` arrived; every timeline event seen."""
    seen: list[dict] = []
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        status, body = await user.get(f"{V3}/sync?timeout=1000&since={since}")
        assert status == 200, body
        since = body["next_batch"]
        seen += body.get("rooms", {}).get("join", {}).get(room_id, {}).get("timeline", {}).get("events", [])
        if bodies <= {e["content"].get("body") for e in seen}:
            return seen
    raise AssertionError(f"{bodies} did not arrive; saw {[e['content'] for e in seen]}")


def bodies_of(events: list[dict]) -> list[str]:
    return [e["content"]["body"] for e in events if e["type"] == "m.room.message"]


# --- scheduling and sending ---------------------------------------------------------------------

async def test_a_delayed_message_reaches_the_room_after_its_delay(alice, bob, room, scheduler):
    since = await since_now(bob)
    started = time.monotonic()
    delay_id = await scheduled(alice, room, 1000, "later")
    # Not sent yet: listed as waiting, absent from bob's timeline.
    assert [e["delay_id"] for e in await listed(alice)] == [delay_id]
    status, body = await bob.get(f"{V3}/sync?timeout=0&since={since}")
    assert bodies_of(body.get("rooms", {}).get("join", {}).get(room, {}).get("timeline", {}).get("events", [])) == []

    events = await timeline_until(bob, room, since, {"later"})
    assert time.monotonic() - started >= 1.0
    message = [e for e in events if e["type"] == "m.room.message"]
    assert len(message) == 1 and message[0]["sender"] == "@alice:test.local"
    assert message[0]["content"] == {"msgtype": "m.text", "body": "later"}
    assert await listed(alice) == []


async def test_a_retried_put_with_the_same_transaction_id_schedules_once(alice, room):
    first = await schedule(alice, room, 60_000, "once", txn="txn-1")
    again = await schedule(alice, room, 60_000, "once", txn="txn-1")
    assert first[0] == again[0] == 200 and first[1] == again[1]
    assert [e["delay_id"] for e in await listed(alice)] == [first[1]["delay_id"]]
    other = await schedule(alice, room, 60_000, "twice", txn="txn-2")
    assert other[1]["delay_id"] != first[1]["delay_id"]


async def test_cancel_prevents_the_send(alice, bob, room, scheduler):
    since = await since_now(bob)
    cancelled = await scheduled(alice, room, 1000, "cancelled")
    await scheduled(alice, room, 1300, "kept")
    status, body = await alice.post(f"{MGMT}/{cancelled}/cancel", {})
    assert (status, body) == (200, {})
    # The scheduler sends in due order: "kept" arriving without "cancelled" shows it was dropped.
    events = await timeline_until(bob, room, since, {"kept"})
    assert bodies_of(events) == ["kept"]
    status, body = await alice.post(f"{MGMT}/{cancelled}/cancel", {})
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")


async def test_restart_postpones_the_send(alice, bob, room, scheduler):
    since = await since_now(bob)
    restarted = await scheduled(alice, room, 2000, "restarted")
    [before] = await listed(alice)
    await asyncio.sleep(0.5)
    status, body = await alice.post(f"{MGMT}/{restarted}/restart", {})
    assert (status, body) == (200, {})
    [after] = await listed(alice)
    assert after["running_since"] - before["running_since"] >= 400
    # Due 2000 ms after the restart, so after a message scheduled now for 1000 ms.
    await scheduled(alice, room, 1000, "sooner")
    events = await timeline_until(bob, room, since, {"restarted", "sooner"})
    assert bodies_of(events) == ["sooner", "restarted"]


async def test_send_sends_at_once(alice, bob, room):
    since = await since_now(bob)
    delay_id = await scheduled(alice, room, 3_600_000, "now")
    status, body = await alice.post(f"{MGMT}/{delay_id}/send", {})
    assert (status, body) == (200, {})
    events = await timeline_until(bob, room, since, {"now"}, deadline_s=3)
    assert bodies_of(events) == ["now"]
    assert await listed(alice) == []
    assert (await alice.post(f"{MGMT}/{delay_id}/send", {}))[0] == 404


async def test_the_action_in_the_body(alice, bob, room):
    since = await since_now(bob)
    first = await scheduled(alice, room, 3_600_000, "first")
    second = await scheduled(alice, room, 3_600_000, "second")
    assert await alice.post(f"{MGMT}/{first}", {"action": "cancel"}) == (200, {})
    assert await alice.post(f"{MGMT}/{second}", {"action": "restart"}) == (200, {})
    assert [e["delay_id"] for e in await listed(alice)] == [second]
    assert await alice.post(f"{MGMT}/{second}", {"action": "send"}) == (200, {})
    assert bodies_of(await timeline_until(bob, room, since, {"second"}, deadline_s=3)) == ["second"]

    status, body = await alice.post(f"{MGMT}/{second}", {})
    assert (status, body["errcode"]) == (400, "M_MISSING_PARAM")
    status, body = await alice.post(f"{MGMT}/{second}", {"action": "explode"})
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    status, body = await alice.post(f"{MGMT}/{second}", raw=b"not json")
    assert (status, body["errcode"]) == (400, "M_NOT_JSON")
    assert (await alice.post(f"{MGMT}/{second}/explode", {}))[0] == 404  # no such route


async def test_listing_shows_what_is_scheduled(alice, bob, room):
    message = await scheduled(alice, room, 60_000, "hello")
    status, body = await alice.put(
        f"{V3}/rooms/{room}/state/org.example.status/@alice:test.local?org.matrix.msc4140.delay=120000",
        {"status": "away"})
    assert status == 200, body
    state = body["delay_id"]
    first, second = await listed(alice)
    now = int(time.time() * 1000)
    for described in (first, second):  # scheduled just now
        assert now - 10_000 < described.pop("running_since") <= now
    assert first == {"delay_id": message, "room_id": room, "type": "m.room.message", "delay": 60_000,
                     "content": {"msgtype": "m.text", "body": "hello"}}
    assert second == {"delay_id": state, "room_id": room, "type": "org.example.status",
                      "state_key": "@alice:test.local", "delay": 120_000, "content": {"status": "away"}}
    assert await listed(bob) == []


async def test_other_users_delay_ids_are_not_found_but_the_id_alone_acts(alice, bob, client, room):
    delay_id = await scheduled(alice, room, 60_000, "alice's")
    for action in ("cancel", "restart", "send"):
        status, body = await bob.post(f"{MGMT}/{delay_id}/{action}", {})
        assert (status, body["errcode"]) == (404, "M_NOT_FOUND"), action
    status, body = await alice.post(f"{MGMT}/unknown-delay-id/cancel", {})
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    assert len(await listed(alice)) == 1
    # Without an access token the delay ID is the capability (as Synapse: for an SFU).
    assert await client.post(f"{MGMT}/{delay_id}/restart", {}) == (200, {})
    assert await client.post(f"{MGMT}/{delay_id}", {"action": "cancel"}) == (200, {})
    assert await listed(alice) == []
    status, body = await client.get(MGMT)
    assert (status, body["errcode"]) == (401, "M_MISSING_TOKEN")


# --- delayed state -------------------------------------------------------------------------------

async def test_a_delayed_state_event_is_sent(alice, bob, room, scheduler):
    since = await since_now(bob)
    status, body = await alice.put(f"{V3}/rooms/{room}/state/org.example.call?org.matrix.msc4140.delay=200",
                                   {"left": True})
    assert status == 200 and "delay_id" in body, body
    end = time.monotonic() + 8
    while time.monotonic() < end:
        status, sync = await bob.get(f"{V3}/sync?timeout=1000&since={since}")
        since = sync["next_batch"]
        events = sync.get("rooms", {}).get("join", {}).get(room, {}).get("timeline", {}).get("events", [])
        if any(e["type"] == "org.example.call" for e in events):
            break
    status, state = await bob.get(f"{V3}/rooms/{room}/state/org.example.call")
    assert (status, state) == (200, {"left": True})


async def test_another_users_state_cancels_the_delayed_state(alice, bob, room):
    path = f"{V3}/rooms/{room}/state/org.example.call/shared"
    status, body = await alice.put(path + "?org.matrix.msc4140.delay=60000", {"by": "alice, later"})
    assert status == 200, body
    # alice's own change to that state keeps her delayed event...
    assert (await alice.put(path, {"by": "alice, now"}))[0] == 200
    assert [e["delay_id"] for e in await listed(alice)] == [body["delay_id"]]
    # ...another user's cancels it, and leaves alice's other delayed events alone.
    await scheduled(alice, room, 60_000, "unrelated")
    status, other = await alice.put(f"{V3}/rooms/{room}/state/org.example.call/other?org.matrix.msc4140.delay=60000",
                                    {})
    assert (await bob.put(path, {"by": "bob"}))[0] == 200
    assert sorted(e.get("state_key", "-") for e in await listed(alice)) == ["-", "other"]
    assert (await alice.post(f"{MGMT}/{body['delay_id']}/send", {}))[0] == 404
    status, state = await alice.get(path)
    assert state == {"by": "bob"}


# --- limits and bad input ------------------------------------------------------------------------

@pytest.mark.parametrize("delay,errcode", [("-1", "M_INVALID_PARAM"), ("soon", "M_INVALID_PARAM"),
                                           ("1.5", "M_INVALID_PARAM")])
async def test_bad_delays_are_refused(alice, room, delay, errcode):
    status, body = await schedule(alice, room, delay, "bad")
    assert (status, body["errcode"]) == (400, errcode)
    status, body = await alice.put(f"{V3}/rooms/{room}/state/org.example.s?org.matrix.msc4140.delay={delay}", {})
    assert (status, body["errcode"]) == (400, errcode)
    assert await listed(alice) == []


async def test_a_delay_past_the_maximum_is_refused_with_the_maximum(alice, room):
    status, body = await schedule(alice, room, 3_600_001, "too late")
    assert status == 400
    assert body["errcode"] == "M_UNKNOWN"
    assert body["org.matrix.msc4140.errcode"] == "M_MAX_DELAY_EXCEEDED"
    assert body["org.matrix.msc4140.max_delay"] == 3_600_000
    assert (await schedule(alice, room, 3_600_000, "just in time"))[0] == 200


async def test_a_user_may_have_only_so_many_scheduled(alice, bob, room):
    for i in range(5):
        await scheduled(alice, room, 60_000 + i * 1000, f"m{i}")
    status, body = await schedule(alice, room, 60_000, "one too many")
    assert (status, body["errcode"]) == (429, "M_LIMIT_EXCEEDED")
    # Until the first of them is sent, about a minute from now.
    assert 50_000 < body["retry_after_ms"] <= 60_000
    assert len(await listed(alice)) == 5
    assert (await scheduled(bob, room, 60_000, "bob's own")) is not None  # per user
    first = (await listed(alice))[0]["delay_id"]
    assert (await alice.post(f"{MGMT}/{first}/cancel", {}))[0] == 200
    assert (await schedule(alice, room, 60_000, "room again"))[0] == 200


async def test_unknown_rooms_and_bad_events_are_refused(alice, room):
    status, body = await schedule(alice, "!nowhere:test.local", 1000, "lost")
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    status, body = await alice.put(f"{V3}/rooms/{room}/send/{'x' * 256}/t1?org.matrix.msc4140.delay=1000", {})
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    status, body = await alice.put(f"{V3}/rooms/{room}/send/m.room.message/t2?org.matrix.msc4140.delay=1000",
                                   raw=b'{"amount": 1.5}')
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")
    status, body = await alice.put(
        f"{V3}/rooms/{room}/state/m.room.member/@alice:test.local?org.matrix.msc4140.delay=1000", {})
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")
    status, body = await alice.put(f"{V3}/rooms/{room}/send/m.room.message/t3?org.matrix.msc4140.delay=1000",
                                   {"body": "x" * 70_000})
    assert (status, body["errcode"]) == (413, "M_TOO_LARGE")
    assert await listed(alice) == []


async def test_advertised_in_versions_and_capabilities(alice, client):
    status, body = await client.get("/_matrix/client/versions")
    assert body["unstable_features"]["org.matrix.msc4140"] is True
    status, body = await alice.get(f"{V3}/capabilities")
    assert body["capabilities"]["org.matrix.msc4140.delayed_events"] == {
        "max_delay_ms": 3_600_000, "max_scheduled": 5}


@pytest.mark.parametrize("config_overrides", [{}])
async def test_off_unless_configured(alice, client, room):
    status, body = await schedule(alice, room, 1000, "not allowed")
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    status, body = await client.get("/_matrix/client/versions")
    assert "org.matrix.msc4140" not in body["unstable_features"]
    status, body = await alice.get(f"{V3}/capabilities")
    assert body["capabilities"]["org.matrix.msc4140.delayed_events"]["max_delay_ms"] == 0
    assert await listed(alice) == []


@pytest.mark.parametrize("config_overrides", [
    {**DELAYED, **limits({"rc_delayed_event_mgmt": {"per_second": 0.01, "burst_count": 2}})}])
async def test_management_is_rate_limited(alice, bob, client, room):
    delay_id = await scheduled(alice, room, 60_000, "limited")
    assert (await alice.get(MGMT))[0] == 200
    assert (await alice.post(f"{MGMT}/{delay_id}/restart", {}))[0] == 200
    await assert_limited(alice, "POST", f"{MGMT}/{delay_id}/restart", {})
    await assert_limited(alice, "GET", MGMT)
    assert (await bob.get(MGMT))[0] == 200  # per user
    # Without a token, per client address.
    assert (await client.post(f"{MGMT}/{delay_id}/restart", {}))[0] == 200
    assert (await client.post(f"{MGMT}/{delay_id}/restart", {}))[0] == 200
    await assert_limited(client, "POST", f"{MGMT}/{delay_id}/restart", {})


# --- restarts and several processes ------------------------------------------------------------

async def restarted(db, signing_key, aiohttp_client):
    """The server built again on the same database (as `chatgo run` starts), with a client."""
    services = build_services(make_test_config(**DELAYED), db, signing_key=signing_key,
                              stream_position=await EventStore(db).current_stream_position(),
                              aux_position=await AuxStreamStore(db).current_position())
    return services, MatrixClient(await aiohttp_client(make_web_app(services, ["client"])))


async def history(user: MatrixClient, room_id: str) -> list[str]:
    status, body = await user.get(f"{V3}/rooms/{room_id}/messages?dir=b&limit=100")
    assert status == 200, body
    return bodies_of(body["chunk"])


async def test_events_due_while_the_server_was_down_are_sent_at_start(alice, bob, room, db, signing_key,
                                                                       aiohttp_client):
    # Scheduled while the scheduler is not running (the server going down), due meanwhile.
    await scheduled(alice, room, 50, "while down")
    await scheduled(alice, room, 200_000, "not yet")
    await asyncio.sleep(0.1)
    services, http = await restarted(db, signing_key, aiohttp_client)
    bob_again, alice_again = http.with_token(bob.token), http.with_token(alice.token)
    since = await since_now(bob_again)
    services.delayed_events.start()
    try:
        await timeline_until(bob_again, room, since, {"while down"})
        assert (await history(bob_again, room)).count("while down") == 1
        assert [e["content"]["body"] for e in await listed(alice_again)] == ["not yet"]
    finally:
        await services.delayed_events.stop()
        await services.devices.flush()
        await services.pushers.close()


async def test_two_schedulers_send_each_due_event_once(alice, room, db, signing_key, aiohttp_client):
    for i in range(5):  # the most alice may have
        await scheduled(alice, room, 20, f"due {i}")
    await asyncio.sleep(0.05)
    first, _ = await restarted(db, signing_key, aiohttp_client)
    second, _ = await restarted(db, signing_key, aiohttp_client)
    # Both processes' schedulers look at the due events at the same moment.
    await asyncio.gather(first.delayed_events.send_due(), second.delayed_events.send_due())
    _, reader = await restarted(db, signing_key, aiohttp_client)
    messages = await history(reader.with_token(alice.token), room)
    assert sorted(messages) == [f"due {i}" for i in range(5)]
    assert await DelayedEventStore(db).next_due(CLAIM_MS) is None


async def test_a_send_cut_short_by_a_crash_is_finished_once(alice, room, db, services):
    store = DelayedEventStore(db)
    delay_id = await scheduled(alice, room, 0, "crash")
    now = int(time.time() * 1000)
    # Another process claimed it and is sending it: not taken over while its claim is fresh.
    assert await store.claim(delay_id, None, now) is not None
    assert await services.delayed_events.send_due() is not None
    assert "crash" not in await history(alice, room)
    # It sent the event (as a scheduler does: from alice's device, with the delay's transaction
    # ID), then died before deleting the row; its claim goes stale.
    status, body = await alice.put(f"{V3}/rooms/{room}/send/m.room.message/{TXN_PREFIX}{delay_id}",
                                   {"msgtype": "m.text", "body": "crash"})
    assert status == 200, body
    await db.execute("UPDATE delayed_events SET claimed_ts = $1", now - CLAIM_MS - 1)
    assert await services.delayed_events.send_due() is None
    assert (await history(alice, room)).count("crash") == 1
    assert await store.next_due(CLAIM_MS) is None


async def test_chatgo_run_processes_on_one_database_send_each_event_once(tmp_path, db_url):
    """Two `chatgo run` processes: events scheduled through one are due on both schedulers
    (the other hears of them through replication) and each is sent once."""
    config_path, port_a, _ = generate(tmp_path, "--enable-registration")
    with config_path.open("a") as f:
        f.write("\nmax_event_delay_duration: 1h  # Synapse's top-level form\n")
    procs, bases = [], []
    for port in (port_a, free_port()):
        listeners = json.dumps([{"port": port, "bind_addresses": ["127.0.0.1"], "resources": ["client"]}])
        procs.append(run_server(config_path, env={"CHATGO_DATABASE_URL": db_url, "CHATGO_LISTENERS": listeners}))
        bases.append(f"http://127.0.0.1:{port}")
    try:
        for base, proc in zip(bases, procs):
            await asyncio.to_thread(wait_for, f"{base}/_matrix/client/versions", proc)
        async with aiohttp.ClientSession(bases[0]) as on_a, aiohttp.ClientSession(bases[1]) as on_b:
            token = (await MatrixClient(on_a).register("alice"))["access_token"]
            alice_a, alice_b = MatrixClient(on_a, token), MatrixClient(on_b, token)
            status, body = await alice_a.post(f"{V3}/createRoom", {})
            room_id = body["room_id"]
            for i in range(5):
                assert (await scheduled(alice_a, room_id, 300 + 100 * i, f"m{i}"))
            # Sent by whichever process claimed each, read through the other.
            expected = [f"m{i}" for i in range(5)]
            end = time.monotonic() + 15
            while time.monotonic() < end and sorted(set(await history(alice_b, room_id))) != expected:
                await asyncio.sleep(0.2)
            await asyncio.sleep(0.5)  # a second send, if there were one, would land meanwhile
            assert sorted(await history(alice_b, room_id)) == expected
            assert await listed(alice_b) == []
    finally:
        for proc in procs:
            await asyncio.to_thread(stop, proc)
