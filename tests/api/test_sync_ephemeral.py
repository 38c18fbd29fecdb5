"""Typing, receipts, read markers, account data, tags, ignored users and presence, through /sync."""

import asyncio
import time

import pytest

from tests.api.test_sync import V3, send, sync


async def shared_room(alice, bob, **create):
    status, body = await alice.post(f"{V3}/createRoom", {"preset": "public_chat", **create})
    room = body["room_id"]
    status, body = await bob.post(f"{V3}/rooms/{room}/join", {})
    assert status == 200, body
    return room


def ephemeral(body, room, kind):
    events = body["rooms"].get("join", {}).get(room, {}).get("ephemeral", {}).get("events", [])
    return [e for e in events if e["type"] == kind]


# --- typing ------------------------------------------------------------------------------------

async def test_typing_wakes_a_waiting_sync_and_stops(alice, bob):
    room = await shared_room(alice, bob)
    token = (await sync(bob))["next_batch"]
    waiting = asyncio.create_task(sync(bob, token, timeout=5000))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    status, body = await alice.put(f"{V3}/rooms/{room}/typing/@alice:test.local", {"typing": True, "timeout": 10000})
    assert status == 200, body
    body = await waiting
    assert time.monotonic() - started < 1.0
    assert ephemeral(body, room, "m.typing") == [{"type": "m.typing", "content": {"user_ids": ["@alice:test.local"]}}]
    # The same token again sees it; the next one does not repeat it.
    token = body["next_batch"]
    await alice.put(f"{V3}/rooms/{room}/typing/@alice:test.local", {"typing": False})
    body = await sync(bob, token)
    assert ephemeral(body, room, "m.typing")[0]["content"]["user_ids"] == []
    body = await sync(bob, body["next_batch"])
    assert ephemeral(body, room, "m.typing") == []


async def test_typing_times_out(alice, bob):
    room = await shared_room(alice, bob)
    await alice.put(f"{V3}/rooms/{room}/typing/@alice:test.local", {"typing": True, "timeout": 200})
    body = await sync(bob)
    assert ephemeral(body, room, "m.typing")[0]["content"]["user_ids"] == ["@alice:test.local"]
    body = await sync(bob, body["next_batch"], timeout=3000)
    assert ephemeral(body, room, "m.typing")[0]["content"]["user_ids"] == []


async def test_typing_errors(alice, bob):
    room = await shared_room(alice, bob)
    status, body = await alice.put(f"{V3}/rooms/{room}/typing/@bob:test.local", {"typing": True})
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    status, body = await alice.put(f"{V3}/rooms/{room}/typing/@alice:test.local", {"typing": "yes"})
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")
    status, body = await alice.put(f"{V3}/rooms/!nowhere:test.local/typing/@alice:test.local", {"typing": True})
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")


# --- receipts and read markers ------------------------------------------------------------------

async def test_receipts_in_sync_public_and_private(alice, bob):
    room = await shared_room(alice, bob)
    event_id = await send(alice, room, "read me")
    token = (await sync(alice))["next_batch"]
    status, body = await bob.post(f"{V3}/rooms/{room}/receipt/m.read/{event_id}", {})
    assert status == 200, body
    body = await sync(alice, token, timeout=2000)
    receipt = ephemeral(body, room, "m.receipt")[0]["content"]
    assert "@bob:test.local" in receipt[event_id]["m.read"]
    assert isinstance(receipt[event_id]["m.read"]["@bob:test.local"]["ts"], int)
    # A private receipt is seen by its owner only.
    token = body["next_batch"]
    bob_token = (await sync(bob))["next_batch"]
    later = await send(alice, room, "private")
    await bob.post(f"{V3}/rooms/{room}/receipt/m.read.private/{later}", {})
    body = await sync(alice, token)
    assert not any("m.read.private" in v for e in ephemeral(body, room, "m.receipt") for v in e["content"].values())
    body = await sync(bob, bob_token)
    assert "@bob:test.local" in ephemeral(body, room, "m.receipt")[0]["content"][later]["m.read.private"]


async def test_threaded_receipt_and_initial_sync_receipts(alice, bob):
    room = await shared_room(alice, bob)
    root = await send(alice, room, "root")
    status, body = await bob.post(f"{V3}/rooms/{room}/receipt/m.read/{root}", {"thread_id": "main"})
    assert status == 200, body
    body = await sync(alice)
    assert ephemeral(body, room, "m.receipt")[0]["content"][root]["m.read"]["@bob:test.local"]["thread_id"] == "main"


async def test_receipt_errors(alice, bob):
    room = await shared_room(alice, bob)
    event_id = await send(alice, room, "x")
    status, body = await bob.post(f"{V3}/rooms/{room}/receipt/m.bogus/{event_id}", {})
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    status, body = await bob.post(f"{V3}/rooms/{room}/receipt/m.read/$missing", {})
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    status, body = await bob.post(f"{V3}/rooms/{room}/receipt/m.read/{event_id}", {"thread_id": 5})
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    status, other = await alice.post(f"{V3}/createRoom", {})
    status, body = await bob.post(f"{V3}/rooms/{other['room_id']}/receipt/m.read/{event_id}", {})
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")


async def test_read_markers_set_fully_read_and_receipt(alice, bob):
    room = await shared_room(alice, bob)
    event_id = await send(alice, room, "marker")
    token = (await sync(bob))["next_batch"]
    status, body = await bob.post(f"{V3}/rooms/{room}/read_markers", {"m.fully_read": event_id, "m.read": event_id})
    assert status == 200, body
    body = await sync(bob, token)
    joined = body["rooms"]["join"][room]
    assert {"type": "m.fully_read", "content": {"event_id": event_id}} in joined["account_data"]["events"]
    assert "@bob:test.local" in ephemeral(body, room, "m.receipt")[0]["content"][event_id]["m.read"]
    status, body = await bob.put(f"{V3}/user/@bob:test.local/rooms/{room}/account_data/m.fully_read", {"event_id": event_id})
    assert (status, body["errcode"]) == (405, "M_BAD_JSON")


# --- account data and tags ----------------------------------------------------------------------

async def test_global_and_room_account_data(alice):
    status, room = await alice.post(f"{V3}/createRoom", {})
    room = room["room_id"]
    token = (await sync(alice))["next_batch"]
    waiting = asyncio.create_task(sync(alice, token, timeout=5000))
    await asyncio.sleep(0.1)
    status, body = await alice.put(f"{V3}/user/@alice:test.local/account_data/org.example.cfg", {"theme": "dark"})
    assert status == 200, body
    body = await waiting
    assert {"type": "org.example.cfg", "content": {"theme": "dark"}} in body["account_data"]["events"]
    await alice.put(f"{V3}/user/@alice:test.local/rooms/{room}/account_data/org.example.r", {"n": 1})
    body = await sync(alice, body["next_batch"])
    assert body["rooms"]["join"][room]["account_data"]["events"] == [{"type": "org.example.r", "content": {"n": 1}}]
    assert "account_data" not in body
    status, got = await alice.get(f"{V3}/user/@alice:test.local/account_data/org.example.cfg")
    assert (status, got) == (200, {"theme": "dark"})
    status, got = await alice.get(f"{V3}/user/@alice:test.local/rooms/{room}/account_data/org.example.r")
    assert (status, got) == (200, {"n": 1})
    status, got = await alice.get(f"{V3}/user/@alice:test.local/account_data/org.example.none")
    assert (status, got["errcode"]) == (404, "M_NOT_FOUND")
    # An initial sync carries everything.
    body = await sync(alice)
    assert {"type": "org.example.cfg", "content": {"theme": "dark"}} in body["account_data"]["events"]


async def test_account_data_errors(alice, bob):
    status, body = await alice.put(f"{V3}/user/@bob:test.local/account_data/x.y", {})
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    status, body = await alice.get(f"{V3}/user/@bob:test.local/account_data/x.y")
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    status, body = await alice.put(f"{V3}/user/@alice:test.local/account_data/m.push_rules", {})
    assert (status, body["errcode"]) == (405, "M_BAD_JSON")
    status, body = await alice.put(f"{V3}/user/@alice:test.local/account_data/x.y", raw=b"[1]")
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")
    status, body = await alice.put(f"{V3}/user/@alice:test.local/rooms/not-a-room/account_data/x.y", {})
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")


async def test_room_tags(alice):
    status, room = await alice.post(f"{V3}/createRoom", {})
    room = room["room_id"]
    base = f"{V3}/user/@alice:test.local/rooms/{room}/tags"
    assert (await alice.put(f"{base}/m.favourite", {"order": 0.5}))[0] == 200
    assert (await alice.put(f"{base}/u.work", {}))[0] == 200
    status, body = await alice.get(base)
    assert body == {"tags": {"m.favourite": {"order": 0.5}, "u.work": {}}}
    sync_body = await sync(alice)
    assert {"type": "m.tag", "content": {"tags": {"m.favourite": {"order": 0.5}, "u.work": {}}}} in \
        sync_body["rooms"]["join"][room]["account_data"]["events"]
    assert (await alice.delete(f"{base}/u.work"))[0] == 200
    status, body = await alice.get(base)
    assert body == {"tags": {"m.favourite": {"order": 0.5}}}
    status, body = await alice.put(f"{base}/bad", {"order": "first"})
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")


async def test_ignored_users_messages_and_invites_hidden(alice, bob, client):
    carol = client.with_token((await client.register("carol"))["access_token"])
    room = await shared_room(alice, bob)
    status, body = await bob.put(f"{V3}/user/@bob:test.local/account_data/m.ignored_user_list",
                                 {"ignored_users": {"@alice:test.local": {}}})
    assert status == 200, body
    token = (await sync(bob))["next_batch"]
    await send(alice, room, "you cannot see me")
    status, other = await alice.post(f"{V3}/createRoom", {"invite": ["@bob:test.local"]})
    await carol.post(f"{V3}/rooms/{room}/join", {})
    await send(carol, room, "visible")
    body = await sync(bob, token)
    bodies = [e["content"].get("body") for e in body["rooms"]["join"][room]["timeline"]["events"]]
    assert "visible" in bodies and "you cannot see me" not in bodies
    assert other["room_id"] not in body["rooms"].get("invite", {})
    # A room whose only news comes from an ignored user has no news: it is left out
    # (as Synapse; sytest 49ignore "Ignore user in existing room").
    token = body["next_batch"]
    await send(alice, room, "still hidden")
    body = await sync(bob, token)
    assert room not in body["rooms"].get("join", {})
    status, body = await bob.put(f"{V3}/user/@bob:test.local/account_data/m.ignored_user_list",
                                 {"ignored_users": ["@alice:test.local"]})
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")


# --- presence ------------------------------------------------------------------------------------

async def test_presence_set_get_and_in_sync(alice, bob):
    await shared_room(alice, bob)
    token = (await sync(bob, set_presence="offline"))["next_batch"]
    status, body = await alice.put(f"{V3}/presence/@alice:test.local/status",
                                   {"presence": "unavailable", "status_msg": "lunch"})
    assert status == 200, body
    status, body = await bob.get(f"{V3}/presence/@alice:test.local/status")
    assert status == 200, body
    assert body["presence"] == "unavailable" and body["status_msg"] == "lunch"
    assert isinstance(body["last_active_ago"], int)
    body = await sync(bob, token, set_presence="offline")
    seen = [e for e in body["presence"]["events"] if e["sender"] == "@alice:test.local"]
    assert seen and seen[-1]["content"]["presence"] == "unavailable"


async def test_presence_errors_and_strangers(alice, bob):
    status, body = await alice.put(f"{V3}/presence/@bob:test.local/status", {"presence": "online"})
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    status, body = await alice.put(f"{V3}/presence/@alice:test.local/status", {"presence": "busy"})
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    status, body = await alice.get(f"{V3}/presence/@bob:test.local/status")  # no shared room
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    status, body = await alice.get(f"{V3}/sync?set_presence=dancing")
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")


# --- to-device and device lists ---------------------------------------------------------------------

async def test_to_device_delivered_once_and_idempotent(alice, bob):
    status, devices = await bob.get(f"{V3}/devices")
    bob_device = devices["devices"][0]["device_id"]
    token = (await sync(bob))["next_batch"]
    message = {"messages": {"@bob:test.local": {bob_device: {"secret": 1}}}}
    assert (await alice.put(f"{V3}/sendToDevice/m.test/txn1", message))[0] == 200
    assert (await alice.put(f"{V3}/sendToDevice/m.test/txn1", message))[0] == 200  # a retry
    body = await sync(bob, token)
    assert body["to_device"]["events"] == [{"type": "m.test", "sender": "@alice:test.local", "content": {"secret": 1}}]
    # Not acknowledged yet: the same token gets it again; the next token does not.
    again = await sync(bob, token)
    assert again["to_device"]["events"] == body["to_device"]["events"]
    after = await sync(bob, body["next_batch"])
    assert "to_device" not in after
    status, body = await alice.put(f"{V3}/sendToDevice/m.test/txn2", {"messages": []})
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")


async def test_device_list_changes_when_a_room_mate_deletes_a_device(alice, bob, client):
    await shared_room(alice, bob)
    token = (await sync(alice))["next_batch"]
    second = await client.post(f"{V3}/login", {"type": "m.login.password", "identifier": {
        "type": "m.id.user", "user": "bob"}, "password": "s3cret-pass"})
    device = second[1]["device_id"]
    status, body = await bob.delete(f"{V3}/devices/{device}", {"auth": {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "bob"}, "password": "s3cret-pass"}})
    assert status == 200, body
    body = await sync(alice, token)
    assert "@bob:test.local" in body["device_lists"]["changed"]


class TestPresenceSwitchedOff:
    @pytest.fixture
    def config_overrides(self):
        return {"presence": {"enabled": False}}

    async def test_presence_off_accepts_updates_and_shares_nothing(self, alice, bob):
        await shared_room(alice, bob)
        token = (await sync(bob))["next_batch"]
        status, body = await alice.put(f"{V3}/presence/@alice:test.local/status", {"presence": "online",
                                                                                   "status_msg": "hi"})
        assert status == 200, body
        status, body = await bob.get(f"{V3}/presence/@alice:test.local/status")
        assert (status, body) == (200, {"presence": "offline"})
        body = await sync(bob, token)
        assert "presence" not in body
