"""Push evaluation off the send path: a send is answered, and the room's next send goes on,
while the push actions of the events before it are still being written; whoever reads the
counts waits for them, so a /sync that returns an event returns counts that include it.
And the per-snapshot values derived from a room's members follow joins without being
derived again from every member."""

import asyncio

from storage.push import PushActionStore
from tests.api.test_push import BOB, CAROL, carol, config_overrides, make_room  # noqa: F401
from tests.api.test_relations_context import send, text

V3 = "/_matrix/client/v3"


async def test_sends_do_not_wait_for_push_actions_and_sync_counts_include_them(alice, bob, carol, monkeypatch,
                                                                                 services):
    room = await make_room(alice, bob, carol)
    await services.events.drain()
    status, body = await bob.get(f"{V3}/sync?timeout=0")
    assert status == 200
    token = body["next_batch"]
    release = asyncio.Event()
    writing = []
    original = PushActionStore.add

    async def held(self, actions):
        writing.append(len(actions))
        await release.wait()
        return await original(self, actions)
    monkeypatch.setattr(PushActionStore, "add", held)

    # Both sends are answered while the first one's push actions cannot be written.
    first = await asyncio.wait_for(send(alice, room, text("one")), 5)
    second = await asyncio.wait_for(send(alice, room, text("two, hey bob")), 5)
    assert writing  # the evaluation of the first is under way, held
    # Bob's sync waits for the counts instead of answering without them.
    syncing = asyncio.create_task(bob.get(f"{V3}/sync?timeout=0&since={token}"))
    await asyncio.sleep(0.3)
    assert not syncing.done()
    release.set()
    status, body = await asyncio.wait_for(syncing, 5)
    assert status == 200
    joined = body["rooms"]["join"][room]
    events = [e["event_id"] for e in joined["timeline"]["events"]]
    assert first in events and second in events
    assert joined["unread_notifications"] == {"notification_count": 2, "highlight_count": 1}
    # Carol, who never synced, counts the same from the database.
    counts = (await services.notifications.unread_counts(CAROL, [room], {}))[room]
    assert (counts["notification_count"], counts["highlight_count"]) == (2, 0)
    status, body = await bob.get(f"{V3}/notifications")
    assert [n["event"]["event_id"] for n in body["notifications"]] == [second, first]


async def test_kept_counts_move_before_the_rows_are_written(alice, bob, carol, monkeypatch, services):
    """A /sync whose counts are kept in memory gets the message and its count once the push
    actions are evaluated, without waiting for their INSERT; one that counts from the database
    (carol never synced: nothing kept) waits for the rows."""
    room = await make_room(alice, bob, carol)
    await services.events.drain()
    token = (await bob.get(f"{V3}/sync?timeout=0"))[1]["next_batch"]
    token = (await bob.get(f"{V3}/sync?timeout=0&since={token}"))[1]["next_batch"]  # bob's counts kept
    assert services.notifications.unread.get(BOB, room) is not None
    release = asyncio.Event()
    original = PushActionStore.add

    async def held(self, actions):
        await release.wait()
        return await original(self, actions)
    monkeypatch.setattr(PushActionStore, "add", held)

    sent = await asyncio.wait_for(send(alice, room, text("one message")), 5)
    status, body = await asyncio.wait_for(bob.get(f"{V3}/sync?timeout=5000&since={token}"), 5)
    assert status == 200
    joined = body["rooms"]["join"][room]
    assert [e["event_id"] for e in joined["timeline"]["events"]] == [sent]
    assert joined["unread_notifications"] == {"notification_count": 1, "highlight_count": 0}
    assert not release.is_set()  # answered while the rows were still held
    counting = asyncio.create_task(services.notifications.sync_unread_counts(CAROL, [room]))
    await asyncio.sleep(0.3)
    assert not counting.done()  # from the database: it waits for the rows
    release.set()
    counts = (await asyncio.wait_for(counting, 5))[room]
    assert (counts["notification_count"], counts["highlight_count"]) == (1, 0)


async def test_joins_update_the_room_values_from_the_new_member_event(alice, client, monkeypatch, services):
    room = await make_room(alice)
    await send(alice, room, text("hello"))
    await services.events.drain()
    evaluator = services.events._before_publish[0].__self__  # the app's PushEvaluator
    derived = []
    memo = evaluator._room_state
    original = memo._derive

    async def counted(room_id, snap):
        derived.append(room_id)
        return await original(room_id, snap)
    monkeypatch.setattr(memo, "_derive", counted)
    servers_derived = []
    servers_original = services.room_servers._derive

    async def servers_counted(room_id, snap):
        servers_derived.append(room_id)
        return await servers_original(room_id, snap)
    monkeypatch.setattr(services.room_servers, "_derive", servers_counted)
    assert await services.room_servers.get(room) == {"test.local"}
    users = []
    for i in range(5):
        user = client.with_token((await client.register(f"joiner{i}"))["access_token"])
        status, _ = await user.post(f"{V3}/rooms/{room}/join", {})
        assert status == 200
        users.append(user)
        assert await services.room_servers.get(room) == {"test.local"}
    assert servers_derived == []  # each join added to the value before it
    status, _ = await users[0].put(f"{V3}/rooms/{room}/state/m.room.member/@joiner0:test.local",
                                   {"membership": "join", "displayname": "Zed"})
    assert status == 200
    status, _ = await users[1].post(f"{V3}/rooms/{room}/leave", {})
    assert status == 200
    await send(alice, room, text("hi zed"))
    await services.events.drain()
    assert derived == []  # every change came from the batch's member event
    snap = await evaluator._rooms.snapshot(room)
    kept = await memo.get_at(room, snap)
    assert kept == await original(room, snap)
    assert set(kept.local_members) == {"@alice:test.local"} | {f"@joiner{i}:test.local" for i in (0, 2, 3, 4)}
    assert kept.display_names["@joiner0:test.local"] == "Zed"
    # ...and the display name change counts: Zed is highlighted by "hi zed", joiner1 has left.
    counts = (await services.notifications.unread_counts("@joiner0:test.local", [room], {}))[room]
    assert (counts["notification_count"], counts["highlight_count"]) == (1, 1)
