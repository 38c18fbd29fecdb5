"""/sync reads what it sends, not the whole room: a lazy-loading sync of a big room reads its
senders' member events only, a woken one reads no state snapshot, the room summary is read
once per state snapshot, and an incremental sync looks only at the rooms that moved."""

import asyncio
import json
import uuid

import pytest

from homeserver.core.filters import SyncFilter
from tests.statement_log import StatementLog

V3 = "/_matrix/client/v3"


@pytest.fixture
def config_overrides():
    return {"presence": {"enabled": False}}  # a sync's presence update would wake the others


async def send(c, room, text):
    status, body = await c.put(f"{V3}/rooms/{room}/send/m.room.message/{uuid.uuid4().hex}",
                               {"msgtype": "m.text", "body": text})
    assert status == 200, body
    return body["event_id"]


async def sync(c, since=None, timeout=0, sync_filter=None):
    query = f"?timeout={timeout}" + (f"&since={since}" if since else "")
    if sync_filter is not None:
        query += f"&filter={json.dumps(sync_filter)}"
    status, body = await c.get(f"{V3}/sync{query}")
    assert status == 200, body
    return body


def lazy(room_id):
    return {"room": {"rooms": [room_id], "timeline": {"limit": 5},
                     "state": {"lazy_load_members": True}}}


async def add_members(services, room_id, start, count):
    for i in range(start, start + count):
        user_id = await services.accounts.create_user(f"member{i}", None)
        await services.membership.join(user_id, room_id, ratelimited=False)


def members_in(room_body):
    return sorted(e["state_key"] for e in room_body["state"]["events"] if e["type"] == "m.room.member")


async def test_a_lazy_initial_sync_reads_the_same_rows_whatever_the_room_size(alice, bob, services, monkeypatch):
    room = (await alice.post(f"{V3}/createRoom", {"preset": "public_chat", "name": "big"}))[1]["room_id"]
    assert (await bob.post(f"{V3}/rooms/{room}/join", {}))[0] == 200
    rows = []
    for members in (5, 40):
        await add_members(services, room, len(rows) * 5, members - len(rows) * 5)
        for i in range(5):  # a timeline of messages: it starts on the room's current snapshot
            await send(alice, room, f"hello {i}")
        await sync(bob, sync_filter=lazy(room))  # the summary of this snapshot is read once
        log = StatementLog(monkeypatch)
        body = (await sync(bob, sync_filter=lazy(room)))["rooms"]["join"][room]
        monkeypatch.undo()
        # Alice's member event (the sender) and bob's own; the other members are not sent.
        assert members_in(body) == ["@alice:test.local", "@bob:test.local"]
        assert body["summary"]["m.joined_member_count"] == members + 2
        assert not log.touching("state_group_entries")
        rows.append(log.rows)
    assert rows[1] <= rows[0] + 2, rows


async def test_a_lazy_initial_sync_of_older_state_reads_only_the_keys_it_sends(alice, bob, services, monkeypatch):
    room = (await alice.post(f"{V3}/createRoom", {"preset": "public_chat"}))[1]["room_id"]
    assert (await bob.post(f"{V3}/rooms/{room}/join", {}))[0] == 200
    await add_members(services, room, 0, 40)
    await send(alice, room, "before the joins")
    await add_members(services, room, 40, 4)  # the timeline starts before these joins
    log = StatementLog(monkeypatch)
    body = (await sync(bob, sync_filter=lazy(room)))["rooms"]["join"][room]
    monkeypatch.undo()
    timeline = body["timeline"]["events"]
    assert [e["type"] for e in timeline] == ["m.room.message"] + ["m.room.member"] * 4
    # The message's sender and bob; the joiners' member events are in the timeline itself.
    assert members_in(body) == ["@alice:test.local", "@bob:test.local"]
    assert {e["type"] for e in body["state"]["events"]} >= {"m.room.create", "m.room.power_levels",
                                                             "m.room.join_rules"}
    # The snapshot before the timeline is read by key: not the 40 other members' entries.
    keyed = [(q, n) for q, n in log.statements if "state_group_entries" in q]
    assert len(keyed) == 1 and keyed[0][1] < 20, keyed


async def test_a_woken_lazy_sync_reads_no_state_snapshot(alice, bob, services, monkeypatch):
    room = (await alice.post(f"{V3}/createRoom", {"preset": "public_chat"}))[1]["room_id"]
    assert (await bob.post(f"{V3}/rooms/{room}/join", {}))[0] == 200
    await add_members(services, room, 0, 20)
    token = (await sync(bob, sync_filter=lazy(room)))["next_batch"]
    token = (await sync(bob, token, sync_filter=lazy(room)))["next_batch"]
    waiting = asyncio.create_task(sync(bob, token, timeout=10_000, sync_filter=lazy(room)))
    await asyncio.sleep(0.2)
    sent = await send(alice, room, "hello")
    log = StatementLog(monkeypatch)
    body = (await waiting)["rooms"]["join"][room]
    assert [e["event_id"] for e in body["timeline"]["events"]] == [sent]
    assert members_in(body) == ["@alice:test.local"]  # the sender's, from the current snapshot
    assert not log.touching("state_group")
    assert log.rows <= 1  # at most alice's member event
    # The next message: alice's member event was sent already: nothing is read at all.
    token = (await sync(bob, token, sync_filter=lazy(room)))["next_batch"]
    waiting = asyncio.create_task(sync(bob, token, timeout=10_000, sync_filter=lazy(room)))
    await asyncio.sleep(0.2)
    second = await send(alice, room, "again")
    log.statements.clear()
    body = (await waiting)["rooms"]["join"][room]
    assert [e["event_id"] for e in body["timeline"]["events"]] == [second]
    assert members_in(body) == []
    assert log.statements == []


async def test_the_summary_is_read_once_per_snapshot_for_all_woken_syncs(alice, client, services, monkeypatch):
    room = (await alice.post(f"{V3}/createRoom", {"preset": "public_chat"}))[1]["room_id"]
    members = []
    for i in range(4):
        member = client.with_token((await client.register(f"waiter{i}"))["access_token"])
        assert (await member.post(f"{V3}/rooms/{room}/join", {}))[0] == 200
        members.append(member)
    tokens = []
    for member in members:
        token = (await sync(member))["next_batch"]
        tokens.append((await sync(member, token))["next_batch"])
    waiting = [asyncio.create_task(sync(m, t, timeout=10_000)) for m, t in zip(members, tokens)]
    await asyncio.sleep(0.3)
    log = StatementLog(monkeypatch)
    joiner = await services.accounts.create_user("joiner", None)
    await services.membership.join(joiner, room, ratelimited=False)
    bodies = await asyncio.gather(*waiting)
    for body in bodies:
        summary = body["rooms"]["join"][room]["summary"]
        assert summary["m.joined_member_count"] == 6 and summary["m.invited_member_count"] == 0
    # Read once for the four woken syncs (the room has no name: heroes, oldest first, not oneself).
    assert len(log.touching("SELECT c.room_id, c.state_key, c.membership FROM current_state")) == 1
    assert bodies[0]["rooms"]["join"][room]["summary"]["m.heroes"] == [
        "@alice:test.local", "@waiter1:test.local", "@waiter2:test.local", "@waiter3:test.local",
        "@joiner:test.local"]
    # A leave moves the room to another snapshot: the summary follows.
    status, _ = await members[3].post(f"{V3}/rooms/{room}/leave", {})
    assert status == 200
    body = await sync(members[0], bodies[0]["next_batch"])
    assert body["rooms"]["join"][room]["summary"]["m.joined_member_count"] == 5


async def test_an_incremental_sync_looks_only_at_the_rooms_that_moved(alice, bob, monkeypatch):
    rooms = []
    for i in range(12):
        room = (await alice.post(f"{V3}/createRoom", {"preset": "public_chat"}))[1]["room_id"]
        assert (await bob.post(f"{V3}/rooms/{room}/join", {}))[0] == 200
        rooms.append(room)
    token = (await sync(bob))["next_batch"]
    token = (await sync(bob, token))["next_batch"]
    looked_at: list[str] = []
    original = SyncFilter.allows_room

    def counting(f, room_id):
        looked_at.append(room_id)
        return original(f, room_id)
    monkeypatch.setattr(SyncFilter, "allows_room", counting)
    body = await sync(bob, token)
    assert body["rooms"] == {} and looked_at == []  # nothing new: no room looked at
    sent = await send(alice, rooms[3], "news")
    body = await sync(bob, token)
    assert list(body["rooms"]["join"]) == [rooms[3]]
    assert [e["event_id"] for e in body["rooms"]["join"][rooms[3]]["timeline"]["events"]] == [sent]
    assert looked_at == [rooms[3]]
    # Bob's own membership moves: every room is looked at again, and the change shows.
    looked_at.clear()
    assert (await bob.post(f"{V3}/rooms/{rooms[5]}/leave", {}))[0] == 200
    body = await sync(bob, body["next_batch"])
    assert list(body["rooms"]["leave"]) == [rooms[5]]
    assert sorted(looked_at) == sorted(rooms)
