"""`device_lists` of an incremental /sync and GET /keys/changes: who is `changed` (room mates
whose devices changed, ourselves for our other devices, members newly sharing a room) and who
`left` (members we no longer share any room with), and that working it out costs what
changed, not the size of the user's rooms."""

import pytest

from tests.api.test_sync import V3, sync
from tests.api.test_sync_room_size import add_members
from tests.statement_log import StatementLog

PASSWORD = "s3cret-pass"


@pytest.fixture
def config_overrides():
    return {"presence": {"enabled": False}}  # presence rows would blur the row counts


async def new_room(owner, *joiners):
    status, body = await owner.post(f"{V3}/createRoom", {"preset": "public_chat"})
    assert status == 200, body
    room = body["room_id"]
    for joiner in joiners:
        status, body = await joiner.post(f"{V3}/rooms/{room}/join", {})
        assert status == 200, body
    return room


async def leave(c, room):
    status, body = await c.post(f"{V3}/rooms/{room}/leave", {})
    assert status == 200, body


async def log_in(client, user):
    """A new device for `user`: their device list changes."""
    status, body = await client.post(f"{V3}/login", {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": user}, "password": PASSWORD})
    assert status == 200, body


async def registered(client, name):
    return client.with_token((await client.register(name, PASSWORD))["access_token"])


async def device_lists_since(c, token):
    body = await sync(c, token)
    lists = body.get("device_lists", {"changed": [], "left": []})
    status, changes = await c.get(f"{V3}/keys/changes?from={token}&to={body['next_batch']}")
    assert status == 200, changes
    # /keys/changes reports the same window the same way.
    assert (sorted(changes["changed"]), sorted(changes["left"])) == (sorted(lists["changed"]),
                                                                     sorted(lists["left"]))
    return sorted(lists["changed"]), sorted(lists["left"]), body["next_batch"]


async def test_changed_lists_room_mates_and_own_devices_but_not_strangers(alice, bob, client):
    await new_room(alice, bob)
    carol = await registered(client, "carol")  # shares no room with alice or bob
    token, carol_token = (await sync(bob))["next_batch"], (await sync(carol))["next_batch"]
    await log_in(client, "alice")
    await log_in(client, "bob")  # bob's other device: bob re-queries his own keys
    await log_in(client, "carol")
    changed, left, _ = await device_lists_since(bob, token)
    assert (changed, left) == (["@alice:test.local", "@bob:test.local"], [])
    changed, left, _ = await device_lists_since(carol, carol_token)
    assert (changed, left) == (["@carol:test.local"], [])


async def test_members_joining_are_changed_and_members_leaving_the_last_shared_room_left(alice, bob, client):
    carol = await registered(client, "carol")
    dave = await registered(client, "dave")
    first = await new_room(alice, bob, carol)
    await new_room(alice, bob)  # bob still shares this one with alice after leaving `first`
    token = (await sync(alice))["next_batch"]
    await leave(bob, first)
    await leave(carol, first)
    status, body = await dave.post(f"{V3}/rooms/{first}/join", {})
    assert status == 200, body
    changed, left, token = await device_lists_since(alice, token)
    assert (changed, left) == (["@dave:test.local"], ["@carol:test.local"])
    # Carol coming back shares a room again: changed.
    status, body = await carol.post(f"{V3}/rooms/{first}/join", {})
    assert status == 200, body
    changed, left, token = await device_lists_since(alice, token)
    assert (changed, left) == (["@carol:test.local"], [])
    # Leaving and coming back within one window: changed, not left.
    await leave(carol, first)
    status, body = await carol.post(f"{V3}/rooms/{first}/join", {})
    assert status == 200, body
    changed, left, _ = await device_lists_since(alice, token)
    assert (changed, left) == (["@carol:test.local"], [])


async def test_rooms_we_join_and_leave_change_and_drop_their_members(alice, bob, client):
    carol = await registered(client, "carol")
    ours = await new_room(alice, bob)
    theirs = await new_room(carol, bob)
    token = (await sync(alice))["next_batch"]
    status, body = await alice.post(f"{V3}/rooms/{theirs}/join", {})
    assert status == 200, body
    changed, left, token = await device_lists_since(alice, token)
    assert (changed, left) == (["@bob:test.local", "@carol:test.local"], [])
    # Leaving it: carol shares nothing else with alice; bob still shares `ours`.
    await leave(alice, theirs)
    changed, left, token = await device_lists_since(alice, token)
    assert (changed, left) == ([], ["@carol:test.local"])
    await leave(alice, ours)
    changed, left, _ = await device_lists_since(alice, token)
    assert (changed, left) == ([], ["@bob:test.local"])


async def test_device_lists_cost_what_changed_not_the_room_size(alice, bob, client, services, monkeypatch):
    room = await new_room(alice, bob)
    rows = []
    for members in (5, 60):
        await add_members(services, room, len(rows) * 5, members - len(rows) * 5)
        token = (await sync(bob))["next_batch"]
        await log_in(client, "alice")
        log = StatementLog(monkeypatch)
        changed, left, _ = await device_lists_since(bob, token)
        monkeypatch.undo()
        assert (changed, left) == (["@alice:test.local"], [])
        # No statement reads the members of bob's room (the old way read all of them).
        assert max(n for _, n in log.statements) < 5, log.statements
        rows.append(log.rows)
    assert rows[1] <= rows[0] + 2, rows
