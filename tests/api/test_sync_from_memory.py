"""/sync answered from what the event pipeline keeps in memory (rooms/recent.py,
sync/cached_queries.py): a woken sync reads no events or memberships from the database, and
what memory serves stays exact through redactions, edits, membership changes and its byte
ceilings."""

import asyncio
import json
import uuid

import pytest

from tests.statement_log import StatementLog

V3 = "/_matrix/client/v3"


async def send(c, room, text, **content):
    status, body = await c.put(f"{V3}/rooms/{room}/send/m.room.message/{uuid.uuid4().hex}",
                               {"msgtype": "m.text", "body": text, **content})
    assert status == 200, body
    return body["event_id"]


async def sync(c, since=None, timeout=0, sync_filter=None):
    query = f"?timeout={timeout}" + (f"&since={since}" if since else "")
    if sync_filter is not None:
        query += f"&filter={json.dumps(sync_filter)}"
    status, body = await c.get(f"{V3}/sync{query}")
    assert status == 200, body
    return body


async def shared_room(alice, bob):
    status, room = await alice.post(f"{V3}/createRoom", {"preset": "public_chat"})
    room = room["room_id"]
    status, body = await bob.post(f"{V3}/rooms/{room}/join", {})
    assert status == 200, body
    return room


@pytest.fixture
def config_overrides():
    return {"presence": {"enabled": False}}  # a sync's presence update would wake the others


async def test_a_woken_sync_reads_no_events_or_memberships_from_the_database(alice, bob, monkeypatch):
    room = await shared_room(alice, bob)
    token = (await sync(bob))["next_batch"]
    token = (await sync(bob, token))["next_batch"]  # the user's memberships are now in memory
    waiting = asyncio.create_task(sync(bob, token, timeout=10_000))
    await asyncio.sleep(0.2)
    sent = await send(alice, room, "hello")
    log = StatementLog(monkeypatch)  # from the send's answer on: the wake-up and the woken sync
    body = await waiting
    assert [e["event_id"] for e in body["rooms"]["join"][room]["timeline"]["events"]] == [sent]
    # Not even the unread counts: kept since bob's last sync, moved by the message's push actions.
    assert log.statements == []
    assert body["rooms"]["join"][room]["unread_notifications"] == {"notification_count": 1, "highlight_count": 0}


async def test_a_fan_out_of_woken_syncs_reads_nothing_from_the_database(alice, client, monkeypatch):
    room = (await alice.post(f"{V3}/createRoom", {"preset": "public_chat"}))[1]["room_id"]
    members = []
    for i in range(6):
        member = client.with_token((await client.register(f"member{i}"))["access_token"])
        assert (await member.post(f"{V3}/rooms/{room}/join", {}))[0] == 200
        members.append(member)
    tokens = []
    for member in members:
        token = (await sync(member))["next_batch"]
        tokens.append((await sync(member, token))["next_batch"])
    waiting = [asyncio.create_task(sync(m, t, timeout=10_000)) for m, t in zip(members, tokens)]
    await asyncio.sleep(0.3)
    sent = await send(alice, room, "to all")
    log = StatementLog(monkeypatch)
    for body in await asyncio.gather(*waiting):
        assert [e["event_id"] for e in body["rooms"]["join"][room]["timeline"]["events"]] == [sent]
        assert body["rooms"]["join"][room]["unread_notifications"]["notification_count"] == 1
    assert log.statements == []  # the counts too: kept in memory since their last syncs


async def test_a_redaction_and_an_edit_after_delivery_show_in_later_syncs(alice, bob):
    room = await shared_room(alice, bob)
    token = (await sync(bob))["next_batch"]
    original = await send(alice, room, "first")
    token = (await sync(bob, token))["next_batch"]
    edit = await send(alice, room, "* second", **{"m.new_content": {"msgtype": "m.text", "body": "second"},
                                                  "m.relates_to": {"rel_type": "m.replace", "event_id": original}})
    doomed = await send(alice, room, "oops")
    status, _ = await alice.put(f"{V3}/rooms/{room}/redact/{doomed}/{uuid.uuid4().hex}", {})
    assert status == 200
    body = await sync(bob, token)
    timeline = {e["event_id"]: e for e in body["rooms"]["join"][room]["timeline"]["events"]}
    assert edit in timeline and timeline[doomed]["content"] == {}
    # A fresh sync serves the same rows from memory: the edit bundled, the redaction applied.
    fresh = {e["event_id"]: e for e in (await sync(bob))["rooms"]["join"][room]["timeline"]["events"]}
    assert fresh[original]["unsigned"]["m.relations"]["m.replace"]["event_id"] == edit
    assert fresh[doomed]["content"] == {}
    assert fresh[doomed]["unsigned"]["redacted_because"]["type"] == "m.room.redaction"


async def test_membership_changes_reach_the_users_woken_sync(alice, bob):
    room = await shared_room(alice, bob)
    token = (await sync(bob))["next_batch"]
    token = (await sync(bob, token))["next_batch"]
    waiting = asyncio.create_task(sync(bob, token, timeout=10_000))
    await asyncio.sleep(0.2)
    status, _ = await alice.post(f"{V3}/rooms/{room}/kick", {"user_id": "@bob:test.local"})
    assert status == 200
    body = await waiting
    assert room in body["rooms"]["leave"] and room not in body["rooms"].get("join", {})
    token = body["next_batch"]
    await alice.post(f"{V3}/rooms/{room}/invite", {"user_id": "@bob:test.local"})
    body = await sync(bob, token)
    assert room in body["rooms"]["invite"]
    status, _ = await bob.post(f"{V3}/rooms/{room}/join", {})
    sent = await send(alice, room, "welcome back")
    body = await sync(bob, body["next_batch"])
    assert sent in [e["event_id"] for e in body["rooms"]["join"][room]["timeline"]["events"]]


async def test_a_sync_naming_a_stored_filter_reads_it_once(alice, bob, monkeypatch):
    """Clients name their filter on every /sync: it is read from the database once and kept
    (a stored filter never changes), so a long-poll costs no statement for it."""
    room = await shared_room(alice, bob)
    status, made = await bob.post(f"{V3}/user/@bob:test.local/filter", {"room": {"timeline": {"limit": 5}}})
    assert status == 200, made
    filter_id = made["filter_id"]

    async def filtered_sync(since=None, timeout=0):
        query = f"?timeout={timeout}&filter={filter_id}" + (f"&since={since}" if since else "")
        status, body = await bob.get(f"{V3}/sync{query}")
        assert status == 200, body
        return body

    log = StatementLog(monkeypatch)
    token = (await filtered_sync())["next_batch"]
    token = (await filtered_sync(token))["next_batch"]
    waiting = asyncio.create_task(filtered_sync(token, timeout=10_000))
    await asyncio.sleep(0.2)
    sent = await send(alice, room, "filtered")
    body = await waiting
    assert [e["event_id"] for e in body["rooms"]["join"][room]["timeline"]["events"]] == [sent]
    assert len(log.touching("FROM user_filters")) == 1, log.statements
    # The kept filter is bob's alone: another user does not get it by its path.
    status, body = await alice.get(f"{V3}/user/@bob:test.local/filter/{filter_id}")
    assert status == 403
