"""Pushing to appservices: the events that concern them in PUT /_matrix/app/v1/transactions, in
order, with the hs_token; retried as they are while an appservice is down and after a restart
(nothing lost, nothing twice); ephemeral data and to-device messages for those that ask."""

from __future__ import annotations

import asyncio
import urllib.parse

from homeserver.app import build_services
from homeserver.web_app import make_web_app
from storage.aux_stream import AuxStreamStore
from storage.events import EventStore
from tests.api.appservices.conftest import SERVER, V3, appservice_config, register_ghost
from tests.conftest import make_test_config
from tests.server_fixtures import MatrixClient


async def create_room(client, **body) -> str:
    status, room = await client.post(f"{V3}/createRoom", body)
    assert status == 200, room
    return room["room_id"]


async def say(client, room_id: str, text: str, txn: str) -> str:
    status, sent = await client.put(f"{V3}/rooms/{room_id}/send/m.room.message/{txn}",
                                    {"msgtype": "m.text", "body": text})
    assert status == 200, sent
    return sent["event_id"]


async def plain_marker(plain, as_plain) -> None:
    """Send an event that concerns `plain` (from its sender) and wait for it: its feed is then
    past every event before."""
    room_id = await create_room(as_plain)
    client = as_plain
    await say(client, room_id, "marker", f"marker-{len(plain.transactions)}")
    await plain.wait_for(lambda: bodies(plain, room_id))


def bodies(service, room_id: str) -> list[str]:
    return [e["content"]["body"] for e in service.events("m.room.message") if e["room_id"] == room_id]


async def test_events_that_concern_an_appservice_reach_it_in_order(feeds, bridge, plain, as_bridge, as_plain, alice):
    room_id = await create_room(alice, preset="public_chat")
    quiet_room = await create_room(alice)
    await register_ghost(as_bridge, "_bridge_eve", inhibit_login=True)
    ghost = f"@_bridge_eve:{SERVER}"
    status, _ = await as_bridge.post(f"{V3}/rooms/{room_id}/join?user_id={urllib.parse.quote(ghost)}", {})
    assert status == 200
    sent = [await say(alice, room_id, f"message {i}", f"m{i}") for i in range(5)]
    await say(alice, quiet_room, "nobody bridged here", "q1")
    await bridge.wait_for(lambda: len(bodies(bridge, room_id)) == 5)
    # In order, as clients see them, with the hs_token (the fake refuses any other).
    assert [e["event_id"] for e in bridge.events("m.room.message")] == sent
    assert bodies(bridge, room_id) == [f"message {i}" for i in range(5)]
    first = bridge.events("m.room.message")[0]
    assert first["sender"] == f"@alice:{SERVER}" and "unsigned" in first and "origin_server_ts" in first
    joins = [e for e in bridge.events("m.room.member") if e["state_key"] == ghost]
    assert joins and joins[0]["content"]["membership"] == "join"
    assert bridge.bad_auth == []
    # Nothing from a room that does not concern it; transaction IDs increase.
    assert all(e["room_id"] == room_id for e in bridge.events())
    txn_ids = [int(t) for t, _ in bridge.transactions]
    assert txn_ids == sorted(txn_ids) and len(set(txn_ids)) == len(txn_ids)
    # The other appservice has no user there: it got nothing of it (its feed went past those
    # events: it got a later one of its own).
    await plain_marker(plain, as_plain)
    assert not [e for e in plain.events() if e["room_id"] in (room_id, quiet_room)]


async def test_room_ids_and_aliases_in_namespaces_bring_the_rooms_events(feeds, bridge, as_bridge, alice, services):
    room_id = await create_room(alice)
    await say(alice, room_id, "before the alias", "a0")
    # The feed goes in stream order: once a later event that concerns it arrived, the
    # earlier one was looked at (and found to concern nobody).
    marker_room = await create_room(as_bridge)
    await say(as_bridge, marker_room, "marker", "a-marker")
    await bridge.wait_for(lambda: bodies(bridge, marker_room))
    alias = urllib.parse.quote(f"#_bridge_room:{SERVER}")
    status, _ = await as_bridge.put(f"{V3}/directory/room/{alias}", {"room_id": room_id})
    assert status == 200
    await say(alice, room_id, "after the alias", "a1")
    await bridge.wait_for(lambda: "after the alias" in bodies(bridge, room_id))
    assert "before the alias" not in bodies(bridge, room_id)
    # A room whose ID is in its rooms namespace: everything in it.
    named = await services.rooms.create_room(f"@alice:{SERVER}", {"room_version": "10"},
                                             room_id=f"!_bridge_42:{SERVER}")
    await say(alice, named, "in a bridged room", "a2")
    await bridge.wait_for(lambda: bodies(bridge, named) == ["in a bridged room"])


async def test_a_down_appservice_gets_everything_once_in_order_when_back(feeds, bridge, as_bridge, alice, services):
    room_id = await create_room(alice)
    await register_ghost(as_bridge, "_bridge_fay", inhibit_login=True)
    await alice.post(f"{V3}/rooms/{room_id}/invite", {"user_id": f"@_bridge_fay:{SERVER}"})
    status, _ = await as_bridge.post(f"{V3}/rooms/{room_id}/join?user_id=@_bridge_fay:{SERVER}", {})
    assert status == 200
    await bridge.wait_for(lambda: [e for e in bridge.events("m.room.member") if e["content"]["membership"] == "join"])
    accepted_before = len(bridge.transactions)
    bridge.down = True
    for i in range(4):
        await say(alice, room_id, f"while down {i}", f"d{i}")
    # It is retried (backing off), always the same transaction while it fails.
    await bridge.wait_for(lambda: len(set(bridge.attempts[-3:])) == 1 and len(bridge.attempts) >= 4)
    failing = bridge.attempts[-1]
    state = (await services.appservice_admin.appservice("bridge"))["feed"]
    assert state["up"] is False and state["pending_transactions"] >= 1
    bridge.down = False
    await bridge.wait_for(lambda: len(bodies(bridge, room_id)) == 4)
    assert bodies(bridge, room_id) == [f"while down {i}" for i in range(4)]
    assert bridge.transactions[accepted_before][0] == failing  # the one that failed, under its ID
    accepted = [t for t, _ in bridge.transactions]
    assert len(accepted) == len(set(accepted))  # nothing twice
    for _ in range(100):  # the 200 has arrived; the transaction is deleted just after
        state = (await services.appservice_admin.appservice("bridge"))["feed"]
        if state["pending_transactions"] == 0:
            break
        await asyncio.sleep(0.02)
    assert (state["up"], state["retry_interval_ms"], state["pending_transactions"]) == (True, 0, 0)


async def test_after_a_restart_the_queue_is_delivered_by_the_next_process(
        feeds, bridge, as_bridge, alice, services, db, signing_key, registrations, aiohttp_client):
    room_id = await create_room(alice)
    await register_ghost(as_bridge, "_bridge_gil", inhibit_login=True)
    await alice.post(f"{V3}/rooms/{room_id}/invite", {"user_id": f"@_bridge_gil:{SERVER}"})
    status, _ = await as_bridge.post(f"{V3}/rooms/{room_id}/join?user_id=@_bridge_gil:{SERVER}", {})
    assert status == 200
    await bridge.wait_for(lambda: [e for e in bridge.events("m.room.member") if e["content"]["membership"] == "join"])
    accepted_before = len(bridge.transactions)
    bridge.down = True
    await say(alice, room_id, "stored before the restart", "r0")
    await bridge.wait_for(lambda: bridge.attempts and bridge.attempts[-1] not in {t for t, _ in bridge.transactions})
    stored = bridge.attempts[-1]
    # The first process stops (its lease goes with it); events keep coming meanwhile.
    await services.appservice_sender.stop()
    await say(alice, room_id, "sent while nobody fed it", "r1")
    bridge.down = False
    second = build_services(make_test_config(**appservice_config(registrations)), db, signing_key=signing_key,
                            stream_position=await EventStore(db).current_stream_position(),
                            aux_position=await AuxStreamStore(db).current_position())
    second.appservice_sender.start()
    try:
        await bridge.wait_for(lambda: len(bodies(bridge, room_id)) == 2)
        assert bodies(bridge, room_id) == ["stored before the restart", "sent while nobody fed it"]
        assert bridge.transactions[accepted_before][0] == stored  # resent by the new process as it was
        accepted = [t for t, _ in bridge.transactions]
        assert len(accepted) == len(set(accepted))
        # Nothing comes twice, later events follow: the feed goes on from where it was.
        alice_again = MatrixClient(await aiohttp_client(make_web_app(second, ["client"])), alice.token)
        await say(alice_again, room_id, "after the restart", "r2")
        await bridge.wait_for(lambda: "after the restart" in bodies(bridge, room_id))
        assert bodies(bridge, room_id) == ["stored before the restart", "sent while nobody fed it", "after the restart"]
    finally:
        await second.appservice_sender.stop()
        await second.devices.flush()
        await second.pushers.close()


async def test_ephemeral_data_and_to_device_go_to_those_that_ask(feeds, bridge, plain, as_bridge, as_plain, alice):
    room_id = await create_room(alice, preset="public_chat")
    await register_ghost(as_bridge, "_bridge_hal", device_id="HALDEV")
    await register_ghost(as_plain, "_plain_ivy", device_id="IVYDEV")
    for as_client, ghost in ((as_bridge, f"@_bridge_hal:{SERVER}"), (as_plain, f"@_plain_ivy:{SERVER}")):
        status, _ = await as_client.post(f"{V3}/rooms/{room_id}/join?user_id={urllib.parse.quote(ghost)}", {})
        assert status == 200
    event_id = await say(alice, room_id, "read me", "e1")
    status, _ = await alice.put(f"{V3}/rooms/{room_id}/typing/@alice:{SERVER}", {"typing": True, "timeout": 10000})
    assert status == 200
    status, _ = await alice.post(f"{V3}/rooms/{room_id}/receipt/m.read/{event_id}", {})
    assert status == 200
    status, _ = await alice.put(f"{V3}/sendToDevice/m.test/td1", {"messages": {
        f"@_bridge_hal:{SERVER}": {"HALDEV": {"hello": "hal"}},
        f"@_plain_ivy:{SERVER}": {"IVYDEV": {"hello": "ivy"}}}})
    assert status == 200

    def ephemeral_of(kind):
        return [e for e in bridge.body_values("ephemeral") if e["type"] == kind and e.get("room_id") == room_id]

    typing = await bridge.wait_for(lambda: [e for e in ephemeral_of("m.typing")
                                            if f"@alice:{SERVER}" in e["content"]["user_ids"]])
    assert typing[0]["room_id"] == room_id
    receipts = await bridge.wait_for(lambda: ephemeral_of("m.receipt"))
    assert receipts[0]["content"][event_id]["m.read"][f"@alice:{SERVER}"]["ts"] > 0
    to_device = await bridge.wait_for(lambda: bridge.body_values("de.sorunome.msc2409.to_device"))
    assert to_device == [{"to_user_id": f"@_bridge_hal:{SERVER}", "to_device_id": "HALDEV", "type": "m.test",
                          "sender": f"@alice:{SERVER}", "content": {"hello": "hal"}}]
    status, _ = await alice.put(f"{V3}/presence/@alice:{SERVER}/status", {"presence": "online", "status_msg": "hi"})
    assert status == 200
    presence = await bridge.wait_for(lambda: [e for e in bridge.body_values("ephemeral")
                                              if e["type"] == "m.presence" and e["sender"] == f"@alice:{SERVER}"])
    assert presence[-1]["content"]["presence"] == "online" and presence[-1]["content"]["status_msg"] == "hi"
    # MSC3202: its users' device-list changes (a new device)...
    await bridge.wait_for(lambda: [b for _, b in bridge.transactions if f"@_bridge_hal:{SERVER}" in
                                   b.get("org.matrix.msc3202.device_lists", {}).get("changed", [])])
    # ... and the one-time-key counts of its users' devices come along.
    counted = [b.get("org.matrix.msc3202.device_one_time_keys_count", {}) for _, b in bridge.transactions]
    assert any(f"@_bridge_hal:{SERVER}" in c and "HALDEV" in c[f"@_bridge_hal:{SERVER}"] for c in counted)
    # The appservice that did not ask gets the events, never the ephemeral keys.
    await plain.wait_for(lambda: [e for e in plain.events("m.room.message") if e["room_id"] == room_id])
    await plain_marker(plain, as_plain)
    for _, body in plain.transactions:
        assert set(body) == {"events"}, body
